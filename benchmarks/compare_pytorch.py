r"""Seconds per DIP iteration: dip-jax against the original PyTorch code, side by side in one process.

    pip install torch==2.13.0          # not a dependency of dip-jax: only this and benchmarks.parity need it
    git clone https://github.com/DmitryUlyanov/deep-image-prior /tmp/dip_ref
    python -m benchmarks.compare_pytorch --reference_dir=/tmp/dip_ref --sizes=256,512 --steps=3 --repeats=3

The configuration is the paper's denoising one (REFERENCE §3.2, F16): the original's
`get_net(32, 'skip', 'reflection', upsample_mode='bilinear')` (2,217,831 parameters) built by
the original's own `models` package, a U(0, 0.1) code perturbed by N(0, (1/30)^2) noise at
every step, MSE to the observation, Adam (lr 0.01), the 0.99 average of outputs and the
PSNR to the observation that the notebook's backtracking watches. dip-jax runs the same
step (`fit.train_step` with backtracking) on `models.get('standard')`, built as `benchmarks.speed` builds it.

Timing: after one warm-up step each (compilation for dip-jax, reported apart), the two
implementations alternate, `--repeats` times `--steps` steps, so that both see the same
machine state; the ratio of medians is what to quote. PyTorch uses `torch.get_num_threads()`
threads (all cores by default), XLA all cores too.
"""

import json

from absl import app, flags

import dip_jax
from benchmarks.pytorch_lib import compare_size

_REFERENCE_DIR = flags.DEFINE_string("reference_dir", None, "A checkout of DmitryUlyanov/deep-image-prior.",
                                     required=True)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square image sides.")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per implementation and size.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")

def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    rows = [compare_size(int(s), _STEPS.value, _REPEATS.value, _REFERENCE_DIR.value) for s in _SIZES.value]
    print(f"torch {rows[0]['torch_version']} ({rows[0]['torch_threads']} threads), jax {rows[0]['jax_version']} "
          f"({rows[0]['backend']})")
    print("| size | PyTorch s/iter (min-max) | dip-jax s/iter (min-max) | speed-up | dip-jax first step s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['pytorch_seconds_per_iter']:.3f} ({r['pytorch_spread'][0]:.3f}-"
              f"{r['pytorch_spread'][1]:.3f}) | {r['dip_jax_seconds_per_iter']:.3f} ({r['dip_jax_spread'][0]:.3f}-"
              f"{r['dip_jax_spread'][1]:.3f}) | {r['speedup']:.2f}x | {r['dip_jax_first_step_seconds']:.1f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
