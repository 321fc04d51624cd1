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

import json
import os
import sys

from absl import app, flags

from experiments import restore

_VARIANTS = flags.DEFINE_multi_string("variants", ["deep", "tv"], "The config's variants to run, in figure order.")
_RUNS = flags.DEFINE_list("runs", [], "Finished run folders to draw instead of running the config.")

FIGURE = "figure.png"
PRIOR_LABELS = {"deep": "deep prior", "tv": "TV prior", "none": "no prior"}


def prior_label(run_config: dict) -> str:
    """What a run's prior is, from its config.json: the pixels net is TV or no prior, any other net the deep prior."""
    if run_config.get("net") == "pixels":
        return PRIOR_LABELS["tv" if run_config.get("tv_weight") else "none"]
    return f"{PRIOR_LABELS['deep']} ({run_config.get('net')})"


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_panel(run_dir: str, label: str = "") -> tuple:
    """(title, image) of a finished run: its restored output (the average when the fit averaged), as shown."""
    from dip_jax import io
    from experiments import outputs, problems

    run_config, metrics = _read_json(os.path.join(run_dir, "config.json")), _read_json(os.path.join(run_dir, "metrics.json"))
    averaged = run_config.get("fit", {}).get("ema_decay") is not None
    image = io.load_image(os.path.join(run_dir, "ema.png" if averaged else "final.png"))
    if run_config.get("task") in problems.FEATURE_TASKS:  # the window the classifier sees
        h, w = metrics["shape"][:2]
        image = image[:h, :w]
    which = "ema" if averaged else "final"
    lines = [label or prior_label(run_config)]
    if metrics.get(f"psnr_{which}") is not None:
        lines.append(f"{metrics[f'psnr_{which}']:.2f} dB")
    caption = outputs.task_caption(metrics, which)
    if caption:
        lines.append(caption)
    return "\n".join(lines), image


def original_panel(run_dir: str):
    """(title, image) of the clean image a run was scored against, else of the image it matched (feature
    inversion's observation is the image to reproduce); None where there is neither."""
    from dip_jax import io

    clean, observation = os.path.join(run_dir, "clean.png"), os.path.join(run_dir, "observation.png")
    if os.path.isfile(clean):
        return "original", io.load_image(clean)
    if _read_json(os.path.join(run_dir, "config.json")).get("task") == "invert":
        return "original", io.load_image(observation)
    return None


def draw(path: str, run_dirs: list, labels: list | None = None) -> None:
    """figure.png: each run's output, then the original (see `original_panel`), titles with their scores."""
    from experiments import outputs

    labels = labels or [""] * len(run_dirs)
    panels = [run_panel(d, label) for d, label in zip(run_dirs, labels, strict=True)]
    original = original_panel(run_dirs[0])
    if original is not None:
        panels.append(original)
    outputs.plot_panels(path, panels)


def variant_config(config_file: str, variant: str, overrides: dict):
    """The config of `config_file:variant` with the command line's overrides (--config.<field>, restore's flags)."""
    import importlib.util

    from ml_collections.config_flags import config_path

    spec = importlib.util.spec_from_file_location("figure_config", config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant)
    for field, value in overrides.items():
        config_path.set_value(field, config, value)
    return restore.config_from_flags(config)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    out_dir = restore._OUT_DIR.value
    if _RUNS.value:
        os.makedirs(out_dir, exist_ok=True)
        draw(os.path.join(out_dir, FIGURE), _RUNS.value)
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
            config = variant_config(config_file, variant, overrides)
            restore_lib.run(config, run_dir, restore._OVERWRITE.value)
    except (ValueError, OSError) as e:  # bad input: one line, no traceback
        sys.exit(f"figures: error: {e}")
    labels = [PRIOR_LABELS.get(v.split(",")[0], v) for v in _VARIANTS.value]
    draw(os.path.join(out_dir, FIGURE), run_dirs, labels)


if __name__ == "__main__":
    app.run(main, flags_parser=restore.parse_flags)
