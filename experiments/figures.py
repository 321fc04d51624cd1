r"""Priors side by side: run a config's variants (deep prior, TV prior) and draw one figure of their outputs.

    python -m experiments.figures --config=experiments/configs/activation_maximization.py --out_dir=/tmp/am_swan
    python -m experiments.figures --config=experiments/configs/feature_inversion.py \
        --image=../shared/data/feature_inversion/building.jpg --out_dir=/tmp/inversion_building
    python -m experiments.figures --runs=/tmp/am_deep,/tmp/am_tv --out_dir=/tmp/am_figure

With --config (a file whose `get_config` takes a variant), it runs `experiments.restore` once
per --variants (default: deep, then tv; repeat the flag for others, e.g.
`--variants=deep,alexnet_caffe --variants=tv,alexnet_caffe`) into out_dir/<variant>, every
other flag of `experiments.restore` (--image, --num_iter, --config.<field>=value) applied to
each, then writes out_dir/figure.png: each run's output titled with its prior and its scores
(the classifier's confidence for activation maximisation; the feature distance and PSNR to
the original for feature inversion; PSNR where there is a clean image), and last the
original: the clean image, or what the fit matched where there is none (feature inversion's
image). Feature tasks show the window the classifier sees. With --runs it draws the figure
of finished run folders (out_dir/figure.png) and runs nothing.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from experiments import figures_lib, restore

_VARIANTS = flags.DEFINE_multi_string("variants", ["deep", "tv"], "The config's variants to run, in figure order.")
_RUNS = flags.DEFINE_list("runs", [], "Finished run folders to draw instead of running the config.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    out_dir = flags.FLAGS.out_dir
    if _RUNS.value:
        os.makedirs(out_dir, exist_ok=True)
        figures_lib.draw(os.path.join(out_dir, figures_lib.FIGURE), _RUNS.value)
        return
    import dip_jax

    dip_jax.configure_xla()
    from ml_collections import config_flags

    from experiments import progress, restore_lib

    progress.quiet_orbax()
    config_flag = flags.FLAGS["config"]
    config_file = config_flags.get_config_filename(config_flag)
    overrides = config_flags.get_override_values(config_flag)
    run_dirs = [os.path.join(out_dir, variant.replace(",", "_")) for variant in _VARIANTS.value]
    try:
        for variant, run_dir in zip(_VARIANTS.value, run_dirs, strict=True):
            config = restore.config_from_flags(figures_lib.variant_config(config_file, variant, overrides))
            restore_lib.run(config, run_dir, flags.FLAGS.overwrite)
    except (ValueError, OSError) as e:  # bad input: one line, no traceback
        sys.exit(f"figures: error: {e}")
    figures_lib.draw(os.path.join(out_dir, figures_lib.FIGURE), run_dirs)


if __name__ == "__main__":
    app.run(main, flags_parser=restore.parse_flags)
