r"""Time to the restored image: the original's fixed budget against dip-jax's, and dip-jax stopping itself.

    pip install torch==2.13.0     # only for the original's timing (as benchmarks.compare_pytorch)
    python -m benchmarks.time_to_result --reference_dir=/tmp/dip_ref \
        --image=../shared/data/denoising/F16_GT.png --crop=128 --out=/tmp/time_to_result.json

For the paper's denoising recipe (`--task=denoise`: F16 settings, sigma 25, 3000 steps) or SR x4
(`--task=sr`: zebra settings, 2000 steps) on a centre crop of `--image`, three rows:

- the original: its seconds per iteration at the restored size, measured on its own code
  side by side with dip-jax's (`pytorch_lib.compare_size`, as benchmarks.compare_pytorch),
  times the recipe's step budget.
  Its PSNR is that of dip-jax's fixed-budget run below: the two compute the same function
  (benchmarks/PARITY.md: 1e-12 in float64), so the original's result differs from it only by
  the seed's draw, not by the implementation. Running the original for the whole budget would
  take as long as the row says.
- dip-jax, the same fixed budget: the wall time of `restore_lib.run` from the call to the
  written result (compilation included) and the result's PSNR (the 0.99 average for denoising,
  the last output for SR: the recipe's own image).
- dip-jax stopping itself (`--early_stopping`, `--patience`, `stop_at_detection`): the same,
  the fit ending `--patience` steps after the detection; its image is the one kept at the detection.

PSNR is RGB against the clean crop, of the recipe's image: the 0.99 average for denoising, the
last output for SR (which does not average).

Without `--reference_dir` the original's row is left out (dip-jax's two rows still run).
"""

from __future__ import annotations

import json
import os

from absl import app, flags

import dip_jax
from benchmarks.measure import fixed_and_stopping_rows

_REFERENCE_DIR = flags.DEFINE_string("reference_dir", None, "A checkout of DmitryUlyanov/deep-image-prior.")
_TASK = flags.DEFINE_enum("task", "denoise", ["denoise", "sr"], "The recipe: F16 denoising or zebra SR x4.")
_IMAGE = flags.DEFINE_string("image", "../shared/data/denoising/F16_GT.png", "The clean image.")
_CROP = flags.DEFINE_integer("crop", 128, "Side of the centre crop restored (SR: the high-resolution side).")
_RULE = flags.DEFINE_string("early_stopping", "emv", "The rule of the self-stopping run.")
_PATIENCE = flags.DEFINE_integer("patience", 200, "Its patience (200: the real-data default).")
_NUM_ITER = flags.DEFINE_integer("num_iter", 0, "Step budget (0: the recipe's).")
_STEPS = flags.DEFINE_integer("steps", 3, "Timed steps per repeat for the per-iteration comparison.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats of the per-iteration comparison.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def recipe(task: str, image: str, crop: int):
    """The paper's config for `task` on a centre crop of `image`, the degradation simulated."""
    from experiments.configs import denoise_f16, sr_zebra_x4

    config = (denoise_f16 if task == "denoise" else sr_zebra_x4).get_config()
    config.image, config.crop = image, (crop, crop)
    return config


def original_row(reference_dir: str, size: int, num_iter: int, fixed: dict, steps: int, repeats: int) -> dict:
    """The original's time for the budget from its measured seconds per iteration; its PSNR is dip-jax's."""
    from benchmarks.pytorch_lib import compare_size

    timing = compare_size(size, steps, repeats, reference_dir)
    return {"run": "original (s/iter x budget)", "seconds": timing["pytorch_seconds_per_iter"] * num_iter,
            "steps": num_iter, "psnr": fixed["psnr"], "seconds_per_iter": timing["pytorch_seconds_per_iter"],
            "dip_jax_seconds_per_iter_side_by_side": timing["dip_jax_seconds_per_iter"]}


def markdown(rows: list[dict]) -> str:
    base = rows[0]["seconds"]
    out = ["| run | steps | wall s | vs first row | PSNR dB |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['run']} | {r['steps']} | {r['seconds']:.0f} | {r['seconds'] / base:.2f} | {r['psnr']:.2f} |")
    return "\n".join(out)


def main(argv):
    del argv
    dip_jax.configure_xla()
    from experiments import progress

    progress.quiet_orbax()
    config = recipe(_TASK.value, _IMAGE.value, _CROP.value)
    if _NUM_ITER.value:
        config.fit.num_iter = _NUM_ITER.value
    rows = fixed_and_stopping_rows(config, _RULE.value, _PATIENCE.value)
    if _REFERENCE_DIR.value:
        rows.insert(0, original_row(_REFERENCE_DIR.value, _CROP.value, int(config.fit.num_iter), rows[0],
                                    _STEPS.value, _REPEATS.value))
    print(markdown(rows))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump({"task": _TASK.value, "image": os.path.abspath(_IMAGE.value), "crop": _CROP.value,
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
