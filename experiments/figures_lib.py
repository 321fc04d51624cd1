"""What `experiments/figures.py` does: a figure config's variants, and one figure of finished runs.

`draw(path, run_dirs)` reads each run folder that `experiments.restore_lib.run` wrote
(config.json, metrics.json, the output images) and draws the outputs side by side with their
priors and scores, then the original; `variant_config` makes a variant's config.
"""

from __future__ import annotations

import importlib.util
import json
import os

from ml_collections.config_flags import config_path

from dip_jax import io
from experiments import outputs, problems

FIGURE = "figure.png"
PRIOR_LABELS = {"deep": "deep prior", "tv": "TV prior", "none": "no prior"}


def prior_label(run_config: dict) -> str:
    """What a run's prior is, from its config.json: the pixels net is TV or no prior, any other net the deep prior."""
    if run_config.get("net") == "pixels":
        return PRIOR_LABELS["tv" if run_config.get("tv_weight") else "none"]
    return PRIOR_LABELS["deep"]


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_panel(run_dir: str) -> tuple:
    """(title, image) of a finished run: its restored output (the average when the fit averaged), as shown."""
    run_config = _read_json(os.path.join(run_dir, "config.json"))
    metrics = _read_json(os.path.join(run_dir, "metrics.json"))
    averaged = run_config.get("fit", {}).get("ema_decay") is not None
    image = io.load_image(os.path.join(run_dir, "ema.png" if averaged else "final.png"))
    if run_config.get("task") in problems.FEATURE_TASKS:  # the window the classifier sees
        h, w = metrics["shape"][:2]
        image = image[:h, :w]
    which = "ema" if averaged else "final"
    lines = [prior_label(run_config)]
    if metrics.get(f"psnr_{which}") is not None:
        lines.append(f"{metrics[f'psnr_{which}']:.2f} dB")
    caption = outputs.task_caption(metrics, which)
    if caption:
        lines.append(caption)
    return "\n".join(lines), image


def original_panel(run_dir: str):
    """(title, image) of the clean image a run was scored against, else of the image it matched (feature
    inversion's observation is the image to reproduce); None where there is neither."""
    clean, observation = os.path.join(run_dir, "clean.png"), os.path.join(run_dir, "observation.png")
    if os.path.isfile(clean):
        return "original", io.load_image(clean)
    if _read_json(os.path.join(run_dir, "config.json")).get("task") == "invert":
        return "original", io.load_image(observation)
    return None


def draw(path: str, run_dirs: list) -> None:
    """figure.png: each run's output, then the original (see `original_panel`), titles with their scores."""
    panels = [run_panel(d) for d in run_dirs]
    original = original_panel(run_dirs[0])
    if original is not None:
        panels.append(original)
    outputs.plot_panels(path, panels)


def variant_config(config_file: str, variant: str, overrides: dict):
    """The config of `config_file:variant` with `overrides` (dotted field -> value, as --config.<field>=value)."""
    spec = importlib.util.spec_from_file_location("figure_config", config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant)
    for field, value in overrides.items():
        config_path.set_value(field, config, value)
    return config
