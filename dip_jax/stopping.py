"""Automatic early stopping for DIP: ES-WMV and ES-EMV (Wang et al., arXiv 2112.06074).

DIP's output first gets better, then fits the noise; on real data there is no clean image
to say when. Wang et al. watch how much the output still moves: the variance of the
recent outputs falls while the net fits the image and rises once it starts fitting the
noise, and the valley of that curve lies close to the peak of the PSNR curve.

- ES-WMV: the variance of the last W outputs (a ring buffer), VAR_t = (1/W) sum_w
  mean((x_w - mean_W x)^2). Memory: W images. A W = 100 buffer at 512x512x3 float32
  holds 300 MB (and K of them when K seeds are fitted at once).
- ES-EMV: the exponential moving variance, O(1) memory (two images' worth whatever W):
  delta = x_t - m, m <- m + a * delta, v <- (1 - a) * (v + a * mean(delta^2)), with
  a = 1 - decay (the authors' notebook uses a = 0.1). Checks start once W outputs have
  been seen (the notebook starts after iteration 100), before which v is still warming up.

Both share the stopping logic of the authors' code: at every check, a variance below
the best so far becomes the detection (its iteration and output are kept) and resets a
counter; otherwise the counter grows, and when it reaches the patience P the rule has
stopped. After that the detection no longer changes, so a fit that runs on reports the
detection the rule made. Variances are per element (the authors sum over pixels), a
constant factor that changes no decision but makes values comparable across sizes.

A rule is a pure `init(shape, dtype)` / `update(state, output, step)` pair whose state
is a pytree: it is carried in the fit's state, runs inside the jitted step, and works
per seed under `jax.vmap` (no Python control flow on traced values).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

RULES = ("none", "wmv", "emv")


@flax.struct.dataclass
class StopState:
    """A rule's statistics and its detection so far."""

    stats: Any  # the rule's own moments: WMV (buffer,), EMV (mean, var)
    best_variance: jax.Array  # the smallest variance seen at a check; inf before the first
    iteration: jax.Array  # int32: the iteration (1-based step) of the detection; 0 = none yet
    output: jax.Array  # the output at the detection (zeros before the first)
    average: jax.Array  # the fit's averaged output at the detection (set by the fit, see `keep_average`)
    wait: jax.Array  # int32: checks since the last improvement
    stopped: jax.Array  # bool: the patience ran out; the detection is final


class StoppingRule(NamedTuple):
    """`init(shape, dtype) -> state`; `update(state, output, step) -> (state, variance)`.

    `step` is the 0-based index of the step whose output is given (its iteration is
    step + 1); `variance` is the rule's statistic there, NaN while it is not yet checked.
    """

    init: Callable[..., StopState]
    update: Callable[[StopState, jax.Array, jax.Array], tuple[StopState, jax.Array]]


def _init(stats, shape, dtype) -> StopState:
    return StopState(
        stats=stats,
        best_variance=jnp.full((), jnp.inf, jnp.float32),
        iteration=jnp.zeros((), jnp.int32),
        output=jnp.zeros(shape, dtype),
        average=jnp.zeros(shape, dtype),
        wait=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), bool),
    )


def _track(state: StopState, stats, variance, output, step, valid, patience: int) -> tuple[StopState, jax.Array]:
    """The shared rule: a new minimum is the detection; P checks without one stop it."""
    check = valid & ~state.stopped
    improved = check & (variance < state.best_variance)
    wait = jnp.where(improved, 0, jnp.where(check, state.wait + 1, state.wait))
    new = StopState(
        stats=stats,
        best_variance=jnp.where(improved, variance, state.best_variance).astype(jnp.float32),
        iteration=jnp.where(improved, jnp.asarray(step, jnp.int32) + 1, state.iteration),
        output=jnp.where(improved, output, state.output),
        average=state.average,
        wait=wait,
        stopped=state.stopped | (check & (wait >= patience)),
    )
    return new, jnp.where(valid, variance, jnp.nan).astype(jnp.float32)


def keep_average(new: StopState, old: StopState, average: jax.Array) -> StopState:
    """`new` with the fit's averaged output kept where `update` made a new detection.

    The rules watch the raw outputs, but the fit's 0.99 average is often the better image at
    the detection (2 dB on F16 in the README): the fit keeps it beside the raw one.
    """
    return new.replace(average=jnp.where(new.iteration != old.iteration, average, old.average))


def wmv(window: int = 100, patience: int = 1000) -> StoppingRule:
    """ES-WMV: the variance over a ring buffer of the last `window` outputs."""
    if window < 2 or patience < 1:
        raise ValueError(f"need window >= 2 and patience >= 1, got {window}, {patience}")

    def init(shape, dtype=jnp.float32) -> StopState:
        return _init((jnp.zeros((window, *shape), dtype),), shape, dtype)

    def update(state: StopState, output: jax.Array, step) -> tuple[StopState, jax.Array]:
        (buffer,) = state.stats
        buffer = jax.lax.dynamic_update_index_in_dim(buffer, output.astype(buffer.dtype), step % window, 0)
        # Two passes over the buffer rather than running sums of x and x^2: late in a fit
        # the variance is ~1e-6 of E[x^2], below what float32 cancellation would leave.
        variance = jnp.mean(jnp.square(buffer - jnp.mean(buffer, axis=0)))
        return _track(state, (buffer,), variance, output, step, step + 1 >= window, patience)

    return StoppingRule(init, update)


def emv(decay: float = 0.9, patience: int = 1000, warmup: int = 100) -> StoppingRule:
    """ES-EMV: an exponential moving variance with weight 1 - `decay` on each new output."""
    if not 0 < decay < 1 or patience < 1 or warmup < 1:
        raise ValueError(f"need 0 < decay < 1, patience >= 1 and warmup >= 1, got {decay}, {patience}, {warmup}")
    alpha = 1.0 - decay

    def init(shape, dtype=jnp.float32) -> StopState:
        return _init((jnp.zeros(shape, dtype), jnp.zeros((), jnp.float32)), shape, dtype)

    def update(state: StopState, output: jax.Array, step) -> tuple[StopState, jax.Array]:
        mean, var = state.stats
        first = step == 0  # the moving mean starts at the first output, the variance at 0
        delta = output - mean
        mean = jnp.where(first, output, mean + alpha * delta)
        var = jnp.where(first, 0.0, (1.0 - alpha) * (var + alpha * jnp.mean(jnp.square(delta))))
        return _track(state, (mean, var), var, output, step, step + 1 >= warmup, patience)

    return StoppingRule(init, update)


def get(name: str, *, window: int = 100, patience: int = 1000, emv_decay: float = 0.9):
    """The rule called `name` ('wmv', 'emv'), or None for 'none'."""
    if name == "none":
        return None
    if name == "wmv":
        return wmv(window, patience)
    if name == "emv":
        return emv(emv_decay, patience, warmup=window)
    raise ValueError(f"early_stopping must be one of {RULES}, got {name!r}")


def replay(variances, patience: int) -> tuple[int, Optional[int]]:
    """The rule's decisions from a fit's `es_variance` history, for any patience: (detection, stop).

    Both are 1-based iterations; the detection is 0 when no check was made, the stop None when
    the patience did not run out within the history. The rule's own state in a fit gives the
    same detection for the fit's patience (tested); replaying a history from a fit that ran on
    tells what a smaller patience would have done, and when the fit would then have ended.
    """
    best, detected, wait = math.inf, 0, 0
    for t, v in enumerate(np.asarray(variances, np.float64)):
        if np.isnan(v):
            continue
        if v < best:
            best, detected, wait = v, t + 1, 0
        else:
            wait += 1
            if wait >= patience:
                return detected, t + 1
    return detected, None
