r"""Tiled against whole-image restoration: PSNR at equal steps, seams, time and memory per tile size.

    python -m benchmarks.tiles --image=../shared/data/denoising/F16_GT.png --crop=256 --tiles=128 \
        --overlaps=16,32,64 --num_iter=600 --out=/tmp/tiles.json
    python -m benchmarks.tiles --task=sr --image=../shared/data/sr/zebra_GT.png --crop=256 --tiles=128 \
        --overlaps=32 --num_iter=600

For the task's config (`--config`, default the quick demo's small net with the paper's recipe)
it restores a centre crop of `--image` whole and then in tiles of each size and overlap, with the
same seed and steps, and reports for each: the PSNR of the output (the 0.99 average; for SR the
paper's PSNR-Y) against the clean crop, the difference to the whole-image run, the seam ratio
(`tiles.seam_ratio`: mean gradient magnitude on the pixels next to tile boundaries over that
elsewhere, on the same grid for the whole-image output, so the two can be compared), seconds
per step (all tiles) and XLA's memory estimate of the fit.

Measured with the two commands above at --num_iter=400 (seed 0): denoising, whole 24.56 dB, tiled
+3.33 / +3.31 / +3.27 dB for overlaps 16 / 32 / 64, seam ratio 0.948 / 0.944 / 0.938 (whole: 0.841);
SR x4, whole 22.08 dB PSNR-Y, tiled (overlap 32) +2.10 dB, seam ratio 1.052 (whole: 0.932).
"""

from __future__ import annotations

import json
import os
import tempfile

from absl import app, flags
from ml_collections import config_flags

import dip_jax

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "configs",
                           "quick.py"), "The restore config (net and fit).")
_TASK = flags.DEFINE_enum("task", "denoise", ["denoise", "sr"], "denoise (sigma 25) or sr (x4).")
_IMAGE = flags.DEFINE_string("image", "", "The clean image (none: skimage's astronaut).")
_CROP = flags.DEFINE_integer("crop", 256, "Side of the centre crop restored.")
_TILES = flags.DEFINE_list("tiles", ["128"], "Tile sides (restored pixels).")
_OVERLAPS = flags.DEFINE_list("overlaps", ["32"], "Overlaps (restored pixels).")
_NUM_ITER = flags.DEFINE_integer("num_iter", 600, "Steps of every run.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def run_one(config, tile: int, overlap: int) -> tuple[dict, object]:
    """One restoration's numbers, and its restored image (the 0.99 average, or the last output without one)."""
    from dip_jax import io
    from experiments import restore_lib

    config = config.copy_and_resolve_references()
    config.tile, config.tile_overlap = tile, overlap
    with tempfile.TemporaryDirectory() as out:
        m = restore_lib.run(config, out)
        image = io.load_image(os.path.join(out, "ema.png"))
    score = next(k for k in ("psnr_y_ema", "psnr_ema") if m.get(k) is not None)
    return {"tile": tile, "overlap": overlap, "psnr": m[score], "seconds_per_iter": m["seconds_per_iter"],
            "tiles": m.get("tiles", 1), "seam_ratio": m.get("seam_ratio")}, image


def main(argv):
    del argv
    dip_jax.configure_xla()
    from dip_jax import tiles
    from experiments import progress

    progress.quiet_orbax()
    config = _CONFIG.value
    config.task, config.image, config.crop = _TASK.value, _IMAGE.value, (_CROP.value, _CROP.value)
    config.default_image_size = _CROP.value
    config.fit.num_iter = _NUM_ITER.value
    if config.task == "sr":
        config.factor, config.fit.ema_decay, config.fit.backtrack = 4, None, False
        config.fit.reg_noise_std = 0.03
    whole, whole_image = run_one(config, 0, 0)
    rows = [whole]
    for tile in [int(t) for t in _TILES.value]:
        for overlap in [int(o) for o in _OVERLAPS.value]:
            row, _ = run_one(config, tile, overlap)
            grid = tiles.grid_for((_CROP.value // (4 if config.task == "sr" else 1),) * 2 + (3,),
                                  (_CROP.value, _CROP.value, 3), tile, overlap)
            row.update(psnr_minus_whole=row["psnr"] - whole["psnr"],
                       whole_seam_ratio=tiles.seam_ratio(whole_image, grid))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| tile | overlap | tiles | PSNR (dB) | tiled - whole (dB) | seam ratio (whole on the same grid) | s/step |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        seams = "" if r["seam_ratio"] is None else f"{r['seam_ratio']:.3f} ({r['whole_seam_ratio']:.3f})"
        print(f"| {r['tile'] or 'whole'} | {r['overlap'] if r['tile'] else ''} | {r['tiles']} | {r['psnr']:.2f} "
              f"| {r.get('psnr_minus_whole', 0):+.2f} | {seams} | {r['seconds_per_iter']:.3f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
