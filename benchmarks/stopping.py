r"""Stopping by itself against the fixed recipe: PSNR and time, for each rule and patience, per figure.

    python -m benchmarks.stopping --data_dir=../shared/data --crop=128 --out=/tmp/stopping.json

For each figure (simulated degradations, so the clean image can score the result): F16
denoising (sigma 25), the snail recompressed as a JPEG of quality 10, kate's text inpainting,
zebra SR x4, each with its config's recipe and step budget (or `--num_iter`), the net of
`--net_config` (default: the quick demo's small net, so that the whole table runs in minutes on a
CPU) and a centre crop of `--crop`. One fit per rule (ES-WMV, ES-EMV) runs the whole budget with
the rule watching; `stopping.replay` then gives, from its variance history, the detection and the
stop for every patience in `--patience`: a fit that stops itself ends at the stop, and its image
is the output or the 0.99 average at the detection. Time is counted as compile time plus steps
times the measured time per step. The fixed recipe is the same fit's image after the budget (the
0.99 average where the recipe averages, the last output otherwise).

Measured (the command above, seed 0): ES-EMV with patience 200 against the fixed recipe: F16
+2.78 dB in 0.49 of its time, snail +0.36 dB in 0.61, zebra no stop (= the recipe), kate -1.78 dB
in 0.40; the whole table is in the README ("Knowing when to stop"). Hence `early_stopping='auto'`:
ES-EMV P = 200 on real denoising and JPEG observations, the fixed budget elsewhere.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
from absl import app, flags
from ml_collections import config_flags

import dip_jax
from benchmarks.measure import stopping_rows

FIGURES = ("f16", "snail", "kate", "zebra")
_DATA_DIR = flags.DEFINE_string("data_dir", "../shared/data", "The paper's images.")
_FIGURES = flags.DEFINE_list("figures", list(FIGURES), f"From {FIGURES}.")
_RULES = flags.DEFINE_list("rules", ["wmv", "emv"], "Stopping rules.")
_PATIENCE = flags.DEFINE_list("patience", ["100", "200", "300", "500", "1000"], "Patience values replayed.")
_CROP = flags.DEFINE_integer("crop", 128, "Centre crop side (SR: of the high-resolution image).")
_NUM_ITER = flags.DEFINE_integer("num_iter", 0, "Step budget of every fit (0: each figure's own).")
_NET_CONFIG = config_flags.DEFINE_config_file(
    "net_config", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "configs",
                               "quick.py"), "A restore config whose net and input replace the figure's.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def figure_config(figure: str, data_dir: str, crop: int):
    """The figure's restore config on its image, simulated so that the clean image is known."""
    from experiments.configs import denoise_f16, inpaint_kate, jpeg_snail, sr_zebra_x4

    if figure == "f16":
        c = denoise_f16.get_config()
        c.image = os.path.join(data_dir, "denoising", "F16_GT.png")
    elif figure == "snail":  # the snail JPEG as the clean image, recompressed at quality 10
        c = jpeg_snail.get_config()
        c.image, c.observation, c.jpeg_quality = os.path.join(data_dir, "denoising", "snail.jpg"), "", 10
    elif figure == "kate":
        c = inpaint_kate.get_config()
        c.image = os.path.join(data_dir, "inpainting", "kate.png")
        c.mask = os.path.join(data_dir, "inpainting", "kate_mask.png")
    elif figure == "zebra":
        c = sr_zebra_x4.get_config()
        c.image = os.path.join(data_dir, "sr", "zebra_GT.png")
    else:
        raise ValueError(f"unknown figure {figure!r}; expected one of {FIGURES}")
    c.crop = (crop, crop)
    return c


def with_net(config, net_config):
    import ml_collections

    config = config.copy_and_resolve_references()
    config.net = net_config.net
    config.net_overrides = ml_collections.ConfigDict(net_config.net_overrides.to_dict())
    config.input = ml_collections.ConfigDict(net_config.input.to_dict())
    return config


def measure(figure: str, rule: str, config, patiences) -> list[dict]:
    from experiments import restore_lib

    config = config.copy_and_resolve_references()
    config.fit.early_stopping, config.fit.es_patience = rule, max(patiences)
    with tempfile.TemporaryDirectory() as out:
        metrics = restore_lib.run(config, out)
        history = dict(np.load(os.path.join(out, "history.npz")))
    return stopping_rows(figure, rule, metrics, history, patiences, config.fit.ema_decay is not None)


def markdown(rows: list[dict]) -> str:
    out = ["| figure | rule | patience | detection | ends at | time vs fixed | PSNR output / average at detection | "
           "fixed recipe | best of the two − fixed |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        at = [r["psnr_output_at_detection"], r["psnr_average_at_detection"]]
        best = max(a for a in at if a is not None) if any(a is not None for a in at) else None
        out.append(f"| {r['figure']} | {r['rule']} | {r['patience']} | {r['detection']} | "
                   f"{r['stop'] or str(r['num_iter']) + ' (no stop)'} | {r['time_fraction']:.2f} | "
                   + " / ".join("" if a is None else f"{a:.2f}" for a in at)
                   + f" | {r['psnr_fixed_recipe']:.2f} {'(average)' if r['fixed_is_average'] else '(output)'} | "
                   + ("" if best is None else f"{best - r['psnr_fixed_recipe']:+.2f}") + " |")
    return "\n".join(out)


def main(argv):
    del argv
    dip_jax.configure_xla()
    from experiments import progress

    progress.quiet_orbax()
    patiences = [int(p) for p in _PATIENCE.value]
    rows = []
    for figure in _FIGURES.value:
        config = with_net(figure_config(figure, _DATA_DIR.value, _CROP.value), _NET_CONFIG.value)
        if _NUM_ITER.value:
            config.fit.num_iter = _NUM_ITER.value
        for rule in _RULES.value:
            rows += measure(figure, rule, config, patiences)
            print(markdown(rows[-len(patiences):]), flush=True)
            if _OUT.value:
                with open(_OUT.value, "w") as f:
                    json.dump(rows, f, indent=2)
    print(markdown(rows))


if __name__ == "__main__":
    app.run(main)
