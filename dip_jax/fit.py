"""Fitting a network to one observation: the DIP optimisation loop (REFERENCE §3.1).

`train_step` is one pure step: forward on the perturbed code, the operator's data term,
its gradient, an Adam update, the exponential average of outputs and, optionally, the
original's backtracking rule. `fit` runs `num_iter` steps. Everything is a pure function of
its inputs and one PRNG key; the per-step perturbation for step t is drawn from
`fold_in(key, t)`, so a run does not depend on how its steps are grouped into calls.

How the steps are looped is chosen per backend, by measurement: on a CPU a jitted step
called from Python is fastest (the same step inside `lax.fori_loop` ran 12x slower here),
while on accelerators several steps per call inside `lax.scan` cut the launch overhead.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dip_jax import metrics, stopping
from dip_jax.operators.base import Operator

FINAL_INPUTS = ("perturbed", "clean")
# Names `jax.default_matmul_precision` takes for the precision of float32 convolutions and
# matrix products: 'float32' (lax.Precision.HIGHEST) is full fp32 on every backend;
# 'tensorfloat32' (HIGH) lets NVIDIA GPUs from Ampere on use TF32 tensor cores (inputs
# rounded to a 10-bit mantissa); 'default' (DEFAULT) is the backend's own choice (TF32 on
# those GPUs, bf16 passes on TPUs). On a CPU all three compute in fp32.
PRECISIONS = ("float32", "tensorfloat32", "default")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Settings of the optimisation; defaults are the original's denoising (REFERENCE §3.2)."""

    num_iter: int = 3000
    lr: float = 0.01
    # sigma_p: std of the Gaussian added to z at every step (REFERENCE §2).
    reg_noise_std: float = 1.0 / 30.0
    # Exponential average of the outputs, out_avg <- d * out_avg + (1 - d) * out; None disables.
    ema_decay: Optional[float] = 0.99
    # Backtracking (REFERENCE §3.1): restore the last saved parameters when PSNR(A(out), y)
    # drops by more than `backtrack_drop_db` in one check. Checks run on counter values
    # that are multiples of `backtrack_check_every` and not of `backtrack_skip_every`
    # (denoising: 1 and 100; restoration: 50 and 0, i.e. never skipped).
    backtrack: bool = False
    backtrack_drop_db: float = 5.0
    backtrack_check_every: int = 1
    backtrack_skip_every: int = 100
    # Which code the final image is rendered from: the original renders denoising, SR and
    # restoration from the last *perturbed* code, inpainting from the clean one (§3.1).
    final_input: str = "perturbed"
    # Steps per compiled call: 0 picks per backend (1 on CPU, 50 elsewhere).
    steps_per_call: int = 0
    # Automatic early stopping (dip_jax/stopping.py; Wang et al., arXiv 2112.06074): 'none',
    # 'wmv' (variance over a ring buffer of the last `es_window` outputs: es_window images of
    # memory, 300 MB for 100 at 512x512x3) or 'emv' (exponential moving variance, O(1)
    # memory; `es_window` is then its warm-up). The paper's W = 100, P = 1000; EMV a = 0.1.
    early_stopping: str = "none"
    es_window: int = 100
    es_patience: int = 1000
    es_emv_decay: float = 0.9
    # True: the fit ends once the rule has stopped (detection + es_patience steps) instead
    # of running all num_iter steps; either way the detection is in FitResult.stop.
    stop_at_detection: bool = False
    # Precision of the net's and the operator's convolutions and matrix products (PRECISIONS).
    # The default keeps fp32 accuracy on every backend, as the original computes; the
    # faster 'tensorfloat32' changes results on GPUs only (see benchmarks/README.md).
    precision: str = "float32"

    def __post_init__(self):
        if self.num_iter < 1:
            raise ValueError(f"num_iter must be >= 1, got {self.num_iter}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.reg_noise_std < 0:
            raise ValueError(f"reg_noise_std must be >= 0, got {self.reg_noise_std}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay}")
        if self.final_input not in FINAL_INPUTS:
            raise ValueError(f"final_input must be one of {FINAL_INPUTS}, got {self.final_input!r}")
        if self.backtrack_check_every < 1 or self.backtrack_skip_every < 0:
            raise ValueError("backtrack_check_every must be >= 1 and backtrack_skip_every >= 0")
        if self.steps_per_call < 0:
            raise ValueError(f"steps_per_call must be >= 0, got {self.steps_per_call}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        stopping_rule(self)  # raises on an unknown rule or bad window, patience, decay
        if self.stop_at_detection and self.early_stopping == "none":
            raise ValueError("stop_at_detection needs early_stopping 'wmv' or 'emv'")


def with_precision(fn: Callable) -> Callable:
    """`fn(..., config=FitConfig)` traced under `config.precision` (see PRECISIONS)."""

    @functools.wraps(fn)
    def wrapped(*args, config: FitConfig, **kwargs):
        with jax.default_matmul_precision(config.precision):
            return fn(*args, config=config, **kwargs)

    return wrapped


def stopping_rule(config: FitConfig) -> Optional[stopping.StoppingRule]:
    return stopping.get(
        config.early_stopping, window=config.es_window, patience=config.es_patience, emv_decay=config.es_emv_decay
    )


@flax.struct.dataclass
class FitState:
    """Everything a fit carries from one step to the next."""

    params: Any
    opt_state: Any
    ema: jax.Array  # the averaged output (HWC); the first output until step 1
    saved_params: Any  # backtracking: the last parameters that passed the check
    last_psnr: jax.Array  # backtracking: PSNR(A(out), y) at the last save; starts at 0
    counter: jax.Array  # the original's closure counter `i`: not advanced by a backtrack
    step: jax.Array  # optimiser steps taken
    key: jax.Array  # perturbations: step t uses fold_in(key, t)
    stopping: Any = None  # the early-stopping rule's `stopping.StopState`; None without one


@flax.struct.dataclass
class FitResult:
    final: jax.Array  # HWC: the net's output after the last step
    ema: jax.Array  # HWC: the exponential average of the outputs (= final when disabled)
    history: dict  # name -> array of one value per step
    state: FitState
    # The early-stopping detection (a `stopping.StopState`: `iteration`, 1-based, 0 when
    # none yet; `output` there; `stopped`), or None without a rule.
    stop: Any = None


@dataclasses.dataclass(frozen=True)
class Problem:
    """What is fitted: the net and how its output is cropped (static and hashable).

    `crop` = (top, left, height, width) of the output window that the operator sees, used
    when z was padded so the net accepts its size; None uses the whole output.
    """

    net: Any  # a Linen module; modules hash and compare by their fields
    crop: Optional[tuple] = None

    def render(self, params, z):
        out = self.net.apply({"params": params}, z)[0]
        if self.crop is not None:
            top, left, h, w = self.crop
            out = out[top : top + h, left : left + w]
        return out


# XLA's backend optimisation buys nothing for code that runs once per fit (initialisation,
# the final render) but costs most of its compile time: 7.9 s against 1.9 s for a small net's
# init on this CPU. Op-by-op execution is slower still (about 20 s), so these are jitted.
_RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 0}


def compile_once(fn, *args):
    """`fn` compiled for `args` with little optimisation: for code that runs once per fit."""
    lowered = jax.jit(fn).lower(*args)
    try:
        return lowered.compile(compiler_options=_RUN_ONCE_OPTIONS)
    except Exception:  # a backend that does not know the option: compile as usual
        return lowered.compile()


def optimizer(config: FitConfig) -> optax.GradientTransformation:
    # optax.adam's defaults (b1 0.9, b2 0.999, eps 1e-8, eps_root 0) are torch.optim.Adam's.
    return optax.adam(config.lr)


@with_precision
def initial_state(net, z: jax.Array, key: jax.Array, *, config: FitConfig, problem: Problem) -> FitState:
    """The loop state before the first step, traceable (so it can be vmapped over keys)."""
    init_key, noise_key = jax.random.split(key)
    params = net.init(init_key, z)["params"]
    out = jax.eval_shape(problem.render, params, z)
    return FitState(
        params=params,
        opt_state=optimizer(config).init(params),
        ema=jnp.zeros(out.shape, out.dtype),
        # A copy: the state is donated to each step, and one buffer cannot be donated twice.
        saved_params=jax.tree_util.tree_map(jnp.copy, params),
        last_psnr=jnp.zeros((), jnp.float32),
        counter=jnp.zeros((), jnp.int32),
        step=jnp.zeros((), jnp.int32),
        key=noise_key,
        stopping=None if (rule := stopping_rule(config)) is None else rule.init(out.shape, out.dtype),
    )


def init_state(net, z: jax.Array, config: FitConfig, key: jax.Array, problem: Optional[Problem] = None) -> FitState:
    """Initialise parameters (from `key`) and the loop state for a fit of `net` on code `z`."""
    fn = functools.partial(initial_state, net, config=config, problem=problem or Problem(net))
    return compile_once(fn, z, key)(z, key)


def perturbed_code(z: jax.Array, config: FitConfig, key: jax.Array, step) -> jax.Array:
    """z + sigma_p * N(0, 1), drawn afresh for each step from fold_in(key, step)."""
    if config.reg_noise_std == 0:
        return z
    eps = jax.random.normal(jax.random.fold_in(key, step), z.shape, z.dtype)
    return z + config.reg_noise_std * eps


@with_precision
def train_step(
    state: FitState,
    z: jax.Array,
    observation: jax.Array,
    operator: Operator,
    clean: Optional[jax.Array],
    *,
    problem: Problem,
    config: FitConfig,
) -> tuple[FitState, dict]:
    """One DIP step; returns the new state and this step's metrics (scalars)."""
    z = perturbed_code(z, config, state.key, state.step)

    def loss_fn(params):
        out = problem.render(params, z)
        return operator.data_term(out, observation), out

    (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    out = jax.lax.stop_gradient(out)

    if config.ema_decay is None:
        ema = out
    else:
        d = config.ema_decay
        ema = jnp.where(state.step == 0, out, d * state.ema + (1.0 - d) * out)

    # An operator whose observation is a placeholder (operator.observed False) has no PSNR to log or backtrack on.
    psnr_obs = metrics.psnr(operator.forward(out), observation) if operator.observed else None
    base_params, saved, last_psnr, counter = state.params, state.saved_params, state.last_psnr, state.counter + 1
    backtracked = jnp.zeros((), bool)
    if config.backtrack:
        if psnr_obs is None:
            raise ValueError(f"backtracking follows PSNR(A(out), y), and {type(operator).__name__} has no observation")
        check = state.counter % config.backtrack_check_every == 0
        if config.backtrack_skip_every:
            check &= state.counter % config.backtrack_skip_every != 0
        backtracked = check & (psnr_obs - state.last_psnr < -config.backtrack_drop_db)
        save = check & ~backtracked
        # The original copies the saved weights back *after* backward(): Adam then steps
        # from the restored weights with the gradient taken at the bad point, its moments
        # kept, and the counter is not advanced (REFERENCE §3.1).
        base_params = _tree_where(backtracked, state.saved_params, state.params)
        saved = _tree_where(save, state.params, state.saved_params)
        last_psnr = jnp.where(save, psnr_obs, state.last_psnr)
        counter = jnp.where(backtracked, state.counter, state.counter + 1)

    updates, opt_state = optimizer(config).update(grads, state.opt_state, base_params)
    params = optax.apply_updates(base_params, updates)

    step_metrics = {"loss": loss, "backtracked": backtracked}
    if psnr_obs is not None:
        step_metrics["psnr_obs"] = psnr_obs
    if clean is not None:
        step_metrics["psnr_clean"] = metrics.psnr(out, clean)
        step_metrics["psnr_ema_clean"] = metrics.psnr(ema, clean)
    stop_state = state.stopping
    rule = stopping_rule(config)
    if rule is not None:
        stop_state, step_metrics["es_variance"] = rule.update(state.stopping, out, state.step)
        stop_state = stopping.keep_average(stop_state, state.stopping, ema)
    new_state = state.replace(
        params=params,
        opt_state=opt_state,
        ema=ema,
        saved_params=saved,
        last_psnr=last_psnr,
        counter=counter,
        step=state.step + 1,
        stopping=stop_state,
    )
    if config.stop_at_detection:
        # Once the rule has stopped, steps leave the state as it is: a chunk of steps (or
        # one seed of several under vmap) that passes the stop ends where the rule did.
        # (The key never changes, and jnp.where takes no typed keys.)
        frozen = _tree_where(state.stopping.stopped, state.replace(key=None), new_state.replace(key=None))
        new_state = frozen.replace(key=state.key)
    return new_state, step_metrics


def _tree_where(cond, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


def step_config(config: FitConfig) -> FitConfig:
    """`config` with the fields that the step never reads set to their defaults.

    Used as the cache key of compiled steps, so that fits differing only in their length or
    in how the final image is rendered share one compilation.
    """
    return dataclasses.replace(config, num_iter=1, final_input=FINAL_INPUTS[0])


def steps_per_call(config: FitConfig, backend: Optional[str] = None) -> int:
    if config.steps_per_call:
        return config.steps_per_call
    backend = backend or jax.default_backend()
    return 1 if backend == "cpu" else 50


def multi_step(state, z, observation, operator, clean, *, problem, config, num_steps: int):
    """`num_steps` steps inside one `lax.scan`; metrics are stacked along a leading axis."""

    def body(s, _):
        return train_step(s, z, observation, operator, clean, problem=problem, config=config)

    return jax.lax.scan(body, state, None, length=num_steps)


@with_precision
def render_final(state: FitState, z: jax.Array, problem: Problem, config: FitConfig) -> jax.Array:
    """The final image: the net once more, on the last perturbed code or the clean one."""
    if config.final_input == "perturbed":  # the code of the last step, as the original's global `net_input`
        z = perturbed_code(z, config, state.key, jnp.maximum(state.step - 1, 0))
    return problem.render(state.params, z)


@functools.lru_cache(maxsize=32)
def compiled_steps(problem: Problem, config: FitConfig, backend: Optional[str] = None):
    """The jitted step functions of a fit: (single step, chunk of n steps or None, n).

    Cached on the (hashable) problem and config, so fits of the same net and settings,
    e.g. several images of one size, trace and compile once.
    """
    one = jax.jit(functools.partial(train_step, problem=problem, config=config), donate_argnums=0)
    n = steps_per_call(config, backend)
    chunk = None
    if n > 1:
        chunk = jax.jit(
            functools.partial(multi_step, problem=problem, config=config, num_steps=n), donate_argnums=0
        )
    return one, chunk, n


def _steps_taken(state) -> int:
    """The largest step count of a state, a stacked state or a list of states."""
    if isinstance(state, list):
        return max(int(s.step) for s in state)
    return int(jnp.max(state.step))


def run_loop(one, chunk, n: int, state, args: tuple, step: int, num_iter: int, callback=None, *,
             stopped: Optional[Callable] = None, checkpoint_every: int = 0, checkpoint_fn: Optional[Callable] = None):
    """Call the compiled steps from `step` until `num_iter`; returns (state, history).

    `one(state, *args)` takes one step, `chunk(state, *args)` takes `n` (or is None). Both
    return (state, metrics); a chunk's metrics have a leading axis of its `n` steps. The
    history stacks every step's metrics along axis 0 (a batched state adds axes after it).
    `stopped(state)`, if given, ends the loop when true (one host sync per call); steps
    after a stop leave the state as it was, and the history is cut where the state stopped.
    `checkpoint_fn(state, history)` runs after each multiple of `checkpoint_every`, after the
    last step and at a stop; chunks never straddle a checkpoint.
    """
    pieces = []
    start = step

    def history_so_far():
        if not pieces:
            return {}
        taken = _steps_taken(state) - start
        return {k: np.concatenate([np.asarray(p[k]) for p in pieces])[:taken] for k in pieces[0]}

    checkpoints = checkpoint_fn is not None and checkpoint_every > 0
    done = stopped is not None and stopped(state)
    while step < num_iter and not done:
        until = num_iter - step
        if checkpoints:
            until = min(until, checkpoint_every - step % checkpoint_every)
        if chunk is not None and until >= n:
            state, m = chunk(state, *args)
            step += n
        else:
            state, m = one(state, *args)
            m = jax.tree_util.tree_map(lambda x: x[None], m)
            step += 1
        pieces.append(m)
        if callback is not None:
            callback(step, {k: v[-1] for k, v in m.items()})
        done = stopped is not None and stopped(state)
        if checkpoints and (step % checkpoint_every == 0 or step >= num_iter or done):
            checkpoint_fn(state, history_so_far())
    return state, history_so_far()


def check_shapes(net, problem: Problem, z, observation, operator, clean, key) -> None:
    """Raise a ValueError when the net's output, the operator and the clean image disagree."""
    param_shapes = jax.eval_shape(net.init, key, z)["params"]
    out_shape = tuple(jax.eval_shape(problem.render, param_shapes, z).shape)
    expected = tuple(operator.output_shape(observation.shape))
    if out_shape != expected:
        raise ValueError(f"the net's output has shape {out_shape} but the operator expects {expected}")
    if clean is not None and tuple(clean.shape) != expected:
        raise ValueError(f"the clean image has shape {tuple(clean.shape)}, expected {expected}")


def fit(
    net,
    z: jax.Array,
    observation: jax.Array,
    operator: Operator,
    config: FitConfig,
    key: jax.Array,
    *,
    clean: Optional[jax.Array] = None,
    crop: Optional[tuple] = None,
    state: Optional[FitState] = None,
    callback: Optional[Callable[[int, dict], None]] = None,
    checkpoint_every: int = 0,
    checkpoint_fn: Optional[Callable[[FitState, dict], None]] = None,
) -> FitResult:
    """Fit `net` so that `operator.forward(net(z))` matches `observation`.

    Args:
      net: a Linen module taking z (1, H, W, C) to (1, H', W', C_out).
      z: the fixed input code.
      observation: the degraded image y (HWC, [0, 1]).
      operator: the degradation (see `dip_jax.operators`).
      config: a `FitConfig`.
      key: the PRNG key for the parameters' initialisation and the perturbations.
      clean: the clean image, when known; adds PSNR against it to the history.
      crop: (top, left, height, width) of the net's output to keep (see `Problem`).
      state: a state to continue from (its step counts towards `num_iter`).
      callback: called as `callback(step, metrics)` after every compiled call (every step
        on CPU, every chunk of steps elsewhere) with the last step's metrics as device
        scalars; converting them waits for the step, so a callback that logs only every
        so often keeps the device busy in between.
      checkpoint_every, checkpoint_fn: with both, `checkpoint_fn(state, history)` is
        called after every step that is a multiple of `checkpoint_every`, after the last
        step, and when the early-stopping rule ends the fit; `history` holds this call's
        steps so far (see `dip_jax.checkpoint`). The state is donated to the next step:
        save it (or copy it) inside the call, do not keep it.

    Returns:
      A `FitResult` with the final and averaged outputs and the per-step history.
    """
    problem = Problem(net, None if crop is None else tuple(crop))
    z = jnp.asarray(z, jnp.float32)
    observation = jnp.asarray(observation, jnp.float32)
    clean = None if clean is None else jnp.asarray(clean, jnp.float32)
    check_shapes(net, problem, z, observation, operator, clean, key)

    if state is None:
        state = init_state(net, z, config, key, problem)
    one, chunk, n = compiled_steps(problem, step_config(config))
    stop_early = config.stop_at_detection and state.stopping is not None
    state, history = run_loop(
        one, chunk, n, state, (z, observation, operator, clean), int(state.step), config.num_iter, callback,
        stopped=(lambda s: bool(s.stopping.stopped)) if stop_early else None,
        checkpoint_every=checkpoint_every, checkpoint_fn=checkpoint_fn,
    )
    render = functools.partial(render_final, problem=problem, config=config)
    final = compile_once(render, state, z)(state, z)
    ema = final if config.ema_decay is None else state.ema
    return FitResult(final=final, ema=ema, history=history, state=state, stop=state.stopping)
