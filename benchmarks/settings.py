r"""Settings where dip-jax's default differs from what the paper's runs used, measured per figure.

    python -m benchmarks.settings --data_dir=../shared/data --out_dir=/tmp/settings --seeds=2

The paper's runs used PyTorch 0.4, which drew BatchNorm's gamma from U(0, 1) (dip-jax: 1)
and upsampled bilinearly with what is now `align_corners=True` (dip-jax: PyTorch >= 0.4's
`align_corners=False`). Each figure of `--figures` is restored with the default and with
each variant that applies to its net (its config; `--seeds` seeds fitted together, seed i
the same code and initial draw in every variant), and the figure's score is computed per
seed from the written 8-bit images: PSNR of the output (the EMA for denoising) against the
clean image, and for SR the paper's Y-channel PSNR. Writes `settings.json` and
`settings.md` into `--out_dir`, the runs themselves into `--work_dir`.

Figures (reduced where a full run would not fit the time; the table says what ran):
- `f16`: denoising sigma 25 (denoise_f16), F16 centre crop of `--crop`, 3000 steps.
- `zebra_x4`: SR x4 (sr_zebra_x4), zebra_GT centre crop 256x384 (LR 64x96), 2000 steps.
- `kate`: text inpainting (inpaint_kate), kate centre crop of `--crop`, `--kate_iters` steps;
  its net upsamples by nearest neighbour, so only gamma applies.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from absl import app, flags

import dip_jax

FIGURES = ("f16", "zebra_x4", "kate")
VARIANTS = ("default", "bn_uniform", "align_corners")

_DATA_DIR = flags.DEFINE_string("data_dir", "../shared/data", "The paper's images (F16, zebra, kate).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for settings.json and settings.md.")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Folder for the runs (default: out_dir/runs).")
_FIGURES = flags.DEFINE_list("figures", list(FIGURES), f"From {FIGURES}.")
_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), f"From {VARIANTS}.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Seeds per run.")
_CROP = flags.DEFINE_integer("crop", 256, "Centre crop side of F16 and kate.")
_NUM_ITER = flags.DEFINE_integer("num_iter", 0, "Steps of every run (0: each figure's own).")
_KATE_ITERS = flags.DEFINE_integer("kate_iters", 3000, "Steps of the kate runs (the paper: 6001).")
_METHOD = flags.DEFINE_enum("method", "auto", ["auto", "vmap", "sequential"], "How the seeds of a run are run.")
_DEADLINE = flags.DEFINE_float("deadline_s", 1e9, "Start no new run after this many seconds.")


def figure_config(figure: str, data_dir: str, crop: int, kate_iters: int):
    """The figure's restore config, on its image from `data_dir`, at the size measured here."""
    from experiments.configs import denoise_f16, inpaint_kate, sr_zebra_x4

    if figure == "f16":
        config = denoise_f16.get_config()
        config.image = os.path.join(data_dir, "denoising", "F16_GT.png")
        config.crop = (crop, crop)
    elif figure == "zebra_x4":
        config = sr_zebra_x4.get_config()
        config.image = os.path.join(data_dir, "sr", "zebra_GT.png")
        config.crop = (256, 384)
    elif figure == "kate":
        config = inpaint_kate.get_config()
        config.image = os.path.join(data_dir, "inpainting", "kate.png")
        config.mask = os.path.join(data_dir, "inpainting", "kate_mask.png")
        config.crop = (crop, crop)
        config.fit.num_iter = kate_iters
    else:
        raise ValueError(f"unknown figure {figure!r}; expected one of {FIGURES}")
    return config


def apply_variant(config, variant: str):
    """The config with the variant's setting, or None where the figure's net has no such setting."""
    config = config.copy_and_resolve_references()
    if variant == "bn_uniform":
        config.net_overrides.bn_scale_init = "uniform"
    elif variant == "align_corners":
        if config.net in ("text_inpainting",):  # nearest upsampling: nothing to align
            return None
        config.net_overrides.upsample_mode = "bilinear_align_corners"
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    return config


def seed_scores(run_dir: str, config, seeds: int) -> list[float]:
    """Each seed's score from its written 8-bit image: PSNR (Y channel, shaved, for SR) against clean.png."""
    from dip_jax import io, metrics

    clean = io.load_image(os.path.join(run_dir, "clean.png"))
    output = "ema" if config.fit.ema_decay is not None else "final"
    names = [f"seed{i}_{output}.png" for i in range(seeds)] if seeds > 1 else [f"{output}.png"]
    score = metrics.psnr_y if config.task == "sr" else metrics.psnr
    return [float(score(io.load_image(os.path.join(run_dir, n)), clean)) for n in names]


def measure(figure: str, variant: str, config, seeds: int, work_dir: str) -> dict:
    from experiments import restore_lib

    config.seeds = seeds
    run_dir = os.path.join(work_dir, f"{figure}_{variant}")
    start = time.perf_counter()
    out = restore_lib.run(config, run_dir, overwrite=True)
    scores = seed_scores(run_dir, config, seeds)
    return {"figure": figure, "variant": variant, "crop": list(config.crop), "num_iter": config.fit.num_iter,
            "seeds": seeds, "scores": scores, "mean": statistics.mean(scores),
            "spread": max(scores) - min(scores), "seconds": time.perf_counter() - start,
            "seconds_per_iter": out.get("seconds_per_iter")}


def markdown(rows: list[dict]) -> str:
    out = ["| figure | variant | crop | steps | PSNR per seed (dB) | mean | seed spread | s/step |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r or "error" in r:
            out.append(f"| {r['figure']} | {r['variant']} | not measured: {r.get('error') or r['skipped']} "
                       "| | | | | |")
            continue
        out.append(f"| {r['figure']} | {r['variant']} | {r['crop'][0]}x{r['crop'][1]} | {r['num_iter']} "
                   f"| {', '.join(f'{s:.2f}' for s in r['scores'])} | {r['mean']:.2f} | {r['spread']:.2f} "
                   f"| {r['seconds_per_iter'] or float('nan'):.4f} |")
    return "\n".join(out)


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    if not _OUT_DIR.value:
        raise app.UsageError("--out_dir is required")
    os.makedirs(_OUT_DIR.value, exist_ok=True)
    work_dir = _WORK_DIR.value or os.path.join(_OUT_DIR.value, "runs")
    start = time.perf_counter()
    rows = []
    # every figure's default first, then the variants: a deadline cuts variants, not baselines
    order = [(v, f) for v in _VARIANTS.value for f in _FIGURES.value]
    for variant, figure in order:
        config = apply_variant(figure_config(figure, _DATA_DIR.value, _CROP.value, _KATE_ITERS.value), variant)
        if config is None:
            continue
        config.method = _METHOD.value
        if _NUM_ITER.value:
            config.fit.num_iter = _NUM_ITER.value
        if time.perf_counter() - start > _DEADLINE.value:
            rows.append({"figure": figure, "variant": variant, "skipped": "deadline"})
        else:
            try:
                rows.append(measure(figure, variant, config, _SEEDS.value, work_dir))
            except Exception as e:  # keep the other runs' numbers
                rows.append({"figure": figure, "variant": variant, "error": f"{type(e).__name__}: {e}"})
        print(json.dumps(rows[-1]), flush=True)
        with open(os.path.join(_OUT_DIR.value, "settings.json"), "w") as f:
            json.dump(rows, f, indent=2)
        with open(os.path.join(_OUT_DIR.value, "settings.md"), "w") as f:
            f.write(markdown(rows))
    print(markdown(rows))
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
