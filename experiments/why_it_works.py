r"""Why the deep prior works: how fast a net fits an image and noise (paper Fig. 2), and what untrained nets output.

    python -m experiments.why_it_works --out_dir=/tmp/dip_why

`fit_speed` (Fig. 2; REFERENCE §5.4): one net, one code z and one setting (MSE, Adam, no
perturbation of z) fitted to four targets made from one image: the image, the image plus
Gaussian noise of std --sigma (on the [0, 255] scale, clipped), the image's pixels shuffled
(a random permutation of the positions, each pixel's colour kept: the same colours, no
structure) and U(0, 1) noise. Writes fit_speed.png (loss against iteration, log scales,
one plot) and fit_speed.npz (the curves).

`untrained`: what randomly initialised nets output for one fixed code z (U(0, 0.1), 32
channels, the same z and initialisation key for each): hourglass nets (no skips, 128
channels a level, bilinear upsampling) of depth 1, 3 and 5, and the 5-level skip net
(`standard`, 128 channels a level too) with bilinear and with nearest upsampling
(--untrained_width sets the 128, for quick checks). Writes untrained.png (one row) and
each output's roughness: the mean absolute difference between neighbouring pixels over the
output's standard deviation (scale-free; a shuffled image scores high, a smooth one low).

metrics.json holds both: each curve's loss at steps 1, 10, 100, 1000 and the last and the
first step at or below a loss of 0.01 and of 0.002 (`steps_to_0.01`, `steps_to_0.002`), and
each net's roughness and standard deviation.

Measured on the 2-core CPU (seed 0, shared with other jobs; 8 minutes for the command):

    python -m experiments.why_it_works --out_dir=/tmp/dip_why --size=64 --num_iter=500 --untrained_size=128

Fig. 2, the `standard` net fitted to a 64x64 crop of the astronaut, 500 steps:

| target | steps to loss 0.01 | steps to 0.002 | loss at step 100 | at step 500 |
|---|---|---|---|---|
| image | 25 | 89 | 0.0016 | 0.00026 |
| image + noise (sigma 25) | 60 | not reached | 0.0092 | 0.0037 |
| shuffled pixels | 197 | 336 | 0.056 | 0.0013 |
| U(0, 1) noise | 265 | 352 | 0.071 | 0.00041 |

As in the paper, the image is fitted first and the structureless targets only after a long
plateau (shuffled pixels and noise stay near their starting loss for about 100 steps), yet
the net fits them all in the end: given 500 steps it fits U(0, 1) noise more closely than
the image + noise, whose loss stays near the noise's variance, (25/255)^2 = 0.0096, from
step 60 to about 200 and only then falls below it, as the net starts fitting the noise.
Stopping on that plateau keeps the image and leaves the noise out.

Untrained nets at 128x128 (untrained.png), roughness: hourglass depth 1 0.585 (fine colour
noise), depth 3 0.183 (blotches), depth 5 0.087 (smooth clouds); skip depth 5 0.284 (clouds
with fine grain from the skips), with nearest upsampling 0.458 (the same with blocky,
axis-aligned grid artefacts). Deeper hourglasses output smoother images before any training;
the skips add back the fine scales.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the figures and metrics.json.")
_EXPERIMENTS = flags.DEFINE_list("experiments", ["fit_speed", "untrained"], "Which to run: fit_speed, untrained.")
_IMAGE = flags.DEFINE_string("image", None, "fit_speed: the natural image (none: a crop of skimage's astronaut).")
_SIZE = flags.DEFINE_integer("size", 64, "fit_speed: the image's centre crop (size x size) that is fitted.")
_NET = flags.DEFINE_string("net", "standard", "fit_speed: a net of dip_jax.models.names().")
_NUM_ITER = flags.DEFINE_integer("num_iter", 2000, "fit_speed: steps per target.")
_LR = flags.DEFINE_float("lr", 0.01, "fit_speed: Adam's learning rate.")
_SIGMA = flags.DEFINE_float("sigma", 25.0, "fit_speed: std of the noise added to the image, on the [0, 255] scale.")
_UNTRAINED_SIZE = flags.DEFINE_integer("untrained_size", 256, "untrained: the side of the code and outputs.")
_UNTRAINED_WIDTH = flags.DEFINE_integer("untrained_width", 128, "untrained: the nets' channels a level.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed: targets, code and initialisation.")
flags.mark_flag_as_required("out_dir")

EXPERIMENTS = ("fit_speed", "untrained")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = sorted(set(_EXPERIMENTS.value) - set(EXPERIMENTS))
    if unknown:
        sys.exit(f"why_it_works: error: unknown experiments {unknown}; expected some of {EXPERIMENTS}")
    import dip_jax

    dip_jax.configure_xla()
    import jax

    from dip_jax import io
    from experiments import outputs, why_it_works_lib

    os.makedirs(_OUT_DIR.value, exist_ok=True)
    key = jax.random.key(_SEED.value)
    metrics = {"seed": _SEED.value}
    try:  # bad input (an unreadable image, a net that does not exist or take the size): one line
        if "fit_speed" in _EXPERIMENTS.value:
            image = io.load_image(_IMAGE.value) if _IMAGE.value else io.default_image(max(_SIZE.value, 256))
            image = io.center_crop(image, _SIZE.value, _SIZE.value)
            metrics["fit_speed"] = {"image": _IMAGE.value or "skimage.data.astronaut", **why_it_works_lib.fit_speed(
                _OUT_DIR.value, image, key, _NET.value, _NUM_ITER.value, _LR.value, _SIGMA.value)}
        if "untrained" in _EXPERIMENTS.value:
            metrics["untrained"] = why_it_works_lib.untrained(_OUT_DIR.value, _UNTRAINED_SIZE.value, key,
                                                                 _UNTRAINED_WIDTH.value)
    except (ValueError, OSError) as e:
        sys.exit(f"why_it_works: error: {e}")
    outputs.write_json(os.path.join(_OUT_DIR.value, "metrics.json"), metrics)


if __name__ == "__main__":
    app.run(main)
