"""Scoring a restoration: one pure function from (observation, clean, result, operator) to numbers.

`evaluate` is what the command line writes to metrics.json and what `benchmarks.quality`
scores, so both report the same numbers for the same fit. It reads no files and writes none.
Every value is a plain float, int, bool, list or None: a value that is not finite (a diverged
fit) is None, so the dict is valid JSON as it is.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import metrics
from dip_jax.operators import Regularized, SuperResolution
from dip_jax.operators.base import Operator


def _number(x):
    """A JSON-ready number: float or int, None where it is not finite."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def finite_or_none(tree):
    """`tree` (dicts, lists, numbers) with every number made JSON-ready (non-finite -> None)."""
    if isinstance(tree, dict):
        return {k: finite_or_none(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [finite_or_none(v) for v in tree]
    if isinstance(tree, (str, type(None))):
        return tree
    return _number(tree)


def base_operator(operator: Operator) -> Operator:
    """The degradation itself, without an added regulariser."""
    return operator.base if isinstance(operator, Regularized) else operator


def early_stopping(stop, history: dict, clean: Optional[jax.Array]) -> dict:
    """The detection of one fit (`stop`, a `stopping.StopState`) and, against the clean image, the gap to the oracle."""
    out = {}
    es_iteration = None
    if stop is not None:
        es_iteration = int(stop.iteration) or None  # 0: no check yet (fewer steps than the window)
        out.update(es_iteration=es_iteration, es_stopped=bool(stop.stopped))
    curve = history.get("psnr_clean")
    if clean is not None and curve is not None and len(curve):
        out.update(oracle_iteration=int(np.argmax(curve)) + 1, oracle_psnr=float(np.max(curve)))
        if es_iteration:
            out.update(psnr_es=float(curve[es_iteration - 1]), es_gap_db=float(np.max(curve) - curve[es_iteration - 1]))
            if len(history.get("psnr_ema_clean", ())):
                out.update(psnr_ema_es=float(history["psnr_ema_clean"][es_iteration - 1]))
    return out


@jax.jit
def task_scores(operator: Operator, image: jax.Array, observation: jax.Array) -> dict:
    """`operator.scores` of an image as it is saved (clipped to [0, 1], 8 bits), compiled with the operator's
    arrays (a classifier's weights) as arguments."""
    as_saved = jnp.round(jnp.clip(image, 0.0, 1.0) * 255.0) / 255.0
    return operator.scores(as_saved, observation)


def evaluate(observation: jax.Array, clean: Optional[jax.Array], result, operator: Operator) -> dict:
    """The numbers of a restoration with K >= 1 seeds (`ensemble.SeedsResult`; seed 0 is the single run).

    Always: the steps run, backtracks, the final loss (mean over seeds), `psnr_obs_final`,
    how well A(output) reproduces the observation (unless the operator has no observation),
    and the operator's own `scores` of seed 0's last output as it is saved (clipped, 8 bits),
    each as `<name>_final`, and of its averaged output as `<name>_ema` when the fit averaged
    (a classifier's confidence for activation maximisation; the feature distance and PSNR
    to the original for feature inversion). With a clean image: PSNR and SSIM of the input
    (when it has the image's size), of seed 0's last and averaged outputs, the best PSNR of
    the average along the fit; for SR the bicubic baseline and the paper's Y-channel PSNR
    (REFERENCE §4.3); for K > 1 every seed's PSNR, their mean and spread and the PSNR of the
    mean image. With an early-stopping rule: seed 0's detection and, with a clean image, its
    gap to the oracle.
    """
    k = int(result.finals.shape[0])
    history = {name: np.asarray(v) for name, v in result.history.items()}
    base = base_operator(operator)
    out = {}
    if "loss" in history and history["loss"].size:
        out.update(steps_run=int(history["loss"].shape[1]), backtracks=int(np.sum(history["backtracked"])),
                   final_loss=float(np.mean(history["loss"][:, -1])))
    if operator.observed:
        out["psnr_obs_final"] = float(metrics.psnr(operator.forward(result.finals[0]), observation))
    scored = {"final": result.finals[0]}
    if not bool(jnp.array_equal(result.emas[0], result.finals[0])):  # the fit averaged its outputs
        scored["ema"] = result.emas[0]
    for name, image in scored.items():
        scores = jax.device_get(task_scores(operator, image, observation))
        out.update({f"{k}_{name}": np.asarray(v).item() for k, v in scores.items()})  # ints stay ints
    if k > 1:
        out["uncertainty_max"] = float(jnp.max(result.std))
    if clean is not None:
        if observation.shape == clean.shape:
            out.update(psnr_input=float(metrics.psnr(observation, clean)),
                       ssim_input=float(metrics.ssim(observation, clean)))
        out.update(psnr_final=float(metrics.psnr(result.finals[0], clean)),
                   psnr_ema=float(metrics.psnr(result.emas[0], clean)),
                   ssim_final=float(metrics.ssim(result.finals[0], clean)),
                   ssim_ema=float(metrics.ssim(result.emas[0], clean)))
        if "psnr_ema_clean" in history and history["psnr_ema_clean"].size:
            curve = history["psnr_ema_clean"][0]
            out.update(psnr_ema_best=float(np.max(curve)), psnr_ema_best_iteration=int(np.argmax(curve)) + 1)
        if isinstance(base, SuperResolution):
            baseline = base.baseline(observation)
            out.update(psnr_baseline=float(metrics.psnr(baseline, clean)),
                       ssim_baseline=float(metrics.ssim(baseline, clean)),
                       psnr_y_final=float(metrics.psnr_y(result.finals[0], clean)),
                       psnr_y_ema=float(metrics.psnr_y(result.emas[0], clean)),
                       psnr_y_baseline=float(metrics.psnr_y(baseline, clean)))
        if k > 1:
            seeds = [float(metrics.psnr(e, clean)) for e in result.emas]
            out.update(psnr_seeds=seeds, psnr_seeds_mean=float(np.mean(seeds)), psnr_seeds_std=float(np.std(seeds)),
                       psnr_mean_image=float(metrics.psnr(result.mean, clean)),
                       ssim_mean_image=float(metrics.ssim(result.mean, clean)))
    stops = getattr(result.state, "stopping", None)
    if stops is not None:  # seed 0's detection, as the single-seed run's
        stop = jax.tree_util.tree_map(lambda x: x[0], stops)
        out.update(early_stopping(stop, {name: v[0] for name, v in history.items()}, clean))
    return finite_or_none(out)
