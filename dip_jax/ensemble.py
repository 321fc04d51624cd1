"""Several seeds, and several images, in one call (REFERENCE §5.1: the paper averages runs).

A *run* is one fit: its own key (parameters, code z, perturbations), its observation and
optionally its clean image. `fit_runs` fits K runs of one shape together; `fit_seeds`
restores one image with K seeds; `fit_images` restores several images (grouped by shape,
so each group compiles once) with K seeds each.

Each run is a whole fit of its own: the vmap is over runs, never over the batch axis of one
network, so each run's BatchNorm sees only its own sample, and seed i behaves as a single
`restore(..., key=keys[i])`.

How runs are executed is chosen per backend (`method`):
- 'vmap': `jax.vmap` of the step over runs, the run axis sharded over every device with a
  1-D mesh (padded to a multiple of the device count). Vmapping over parameters turns each
  convolution into a grouped convolution; accelerators run those well.
- 'sequential': one compiled single-run step, called for each run in turn at every
  iteration. On a one-device CPU this is the fastest: vmapped grouped convolutions ran
  1.55x slower per seed than sequential steps here (see benchmarks/seeds.py).
- 'auto': 'vmap' over several devices (each device then runs its own slice of the runs);
  on one device 'sequential', except for small images on an accelerator. Measured on one
  H200 (jax 0.11.2, standard net, benchmarks/accelerator.py): at 64x64 a vmapped step of
  K = 2 took 2.3 ms per seed against 3.3 ms sequential (launch-bound), at 256x256 12.5 ms
  per seed against 6.6 ms (cuDNN runs the grouped convolutions of vmap 1.9x slower than K
  plain ones). Below `VMAP_MAX_PIXELS` (128 x 128, between the two measured sizes) 'auto'
  vmaps on a one-device accelerator.

Across processes (`jax.distributed`): given devices of several processes (the default,
`jax.devices()`, once `jax.distributed.initialize` has run), the mesh spans them and each
process's devices run their slice of the runs; every process calls with the same arguments.
The results hold what every process needs to write files: finals, averaged outputs, mean, std
and history are gathered onto every process (plain arrays each process can read), the
per-step metrics with each compiled call; the state stays split over the processes
(`multihost_utils.process_allgather` reads it).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dip_jax import fit as fit_lib
from dip_jax.operators.base import Operator
from dip_jax.restore import DEFAULT_INPUT, InputConfig, make_code

METHODS = ("auto", "vmap", "sequential")


@flax.struct.dataclass
class RunsResult:
    finals: jax.Array  # (K, H, W, C): each run's last output
    emas: jax.Array  # (K, H, W, C): each run's averaged output
    history: dict  # name -> (K, T)
    state: fit_lib.FitState  # stacked along a leading run axis


@flax.struct.dataclass
class SeedsResult:
    finals: jax.Array  # (K, H, W, C)
    emas: jax.Array  # (K, H, W, C)
    mean: jax.Array  # (H, W, C): the mean over seeds of the averaged outputs
    std: jax.Array  # (H, W, C): their per-pixel standard deviation, an uncertainty map
    history: dict  # name -> (K, T)
    state: fit_lib.FitState


# One-device accelerators: images up to this many pixels fit K runs faster vmapped (see above).
VMAP_MAX_PIXELS = 128 * 128


def choose_method(method: str, backend: Optional[str] = None, num_devices: Optional[int] = None,
                  pixels: Optional[int] = None) -> str:
    """The method 'auto' stands for on this backend and device count, for images of `pixels` pixels."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if method != "auto":
        return method
    backend = backend or jax.default_backend()
    num_devices = jax.device_count() if num_devices is None else num_devices
    if num_devices > 1:
        return "vmap"
    small = pixels is not None and pixels <= VMAP_MAX_PIXELS
    return "vmap" if backend != "cpu" and small else "sequential"


@jax.jit
def _stack_jit(trees: tuple):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _stack(trees):
    # one compiled program for the whole tree: stacking leaf by leaf eagerly compiles a program per
    # leaf shape (about a hundred for a state), minutes on a loaded CPU for the tiles of a large photo
    return _stack_jit(tuple(trees))


def _run_operator(operator, i: int, per_run: bool):
    return jax.tree_util.tree_map(lambda x: x[i], operator) if per_run else operator


def _sequential(fn: Callable, k: int, per_run_operator: bool = False) -> Callable:
    """Apply a single-run step to each of k runs in turn; metrics gain a trailing run axis."""

    def step(states, zs, observations, operator, cleans):
        out = [fn(states[i], zs[i], observations[i], _run_operator(operator, i, per_run_operator),
                  None if cleans is None else cleans[i]) for i in range(k)]
        new_states = [s for s, _ in out]
        metrics = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs, axis=-1), *[m for _, m in out])
        return new_states, metrics

    return step


@functools.lru_cache(maxsize=16)
def vmapped_steps(problem: fit_lib.Problem, config: fit_lib.FitConfig, backend: Optional[str],
                   devices: Optional[tuple] = None, per_run_operator: bool = False):
    """Jitted steps vmapped over runs; chunk metrics come out (n, K) like single-step ones (K,).

    With several devices, each device runs the vmapped step on its own slice of the runs
    (`shard_map` over a 1-D mesh). Leaving the split to XLA's SPMD partitioner instead fails
    on this CPU: it splits the grouped convolutions that vmap makes across devices and
    rejects the result ("output feature dimension ... divisible by feature_group_count").
    With `per_run_operator`, the operator's arrays have a leading run axis (a mask per tile).
    """
    axes = (0, 0, 0, 0 if per_run_operator else None, 0)
    step = functools.partial(fit_lib.train_step, problem=problem, config=config)
    n = fit_lib.steps_per_call(config, backend)
    multi = functools.partial(fit_lib.multi_step, problem=problem, config=config, num_steps=n)

    def one_fn(*args):
        return jax.vmap(step, in_axes=axes)(*args)

    def chunk_fn(*args):
        states, m = jax.vmap(multi, in_axes=axes)(*args)
        return states, jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 0, 1), m)

    if devices is not None:
        mesh = Mesh(np.array(devices), ("runs",))
        runs = PartitionSpec("runs")
        specs = (runs, runs, runs, runs if per_run_operator else PartitionSpec(), runs)
        one_fn = jax.shard_map(one_fn, mesh=mesh, in_specs=specs, out_specs=(runs, runs))
        chunk_fn = jax.shard_map(chunk_fn, mesh=mesh, in_specs=specs,
                                 out_specs=(runs, PartitionSpec(None, "runs")))
        if spans_processes(devices):  # every process reads every run's metrics (progress, history, stops)
            one_fn, chunk_fn = _metrics_everywhere(one_fn, mesh), _metrics_everywhere(chunk_fn, mesh)
    one = jax.jit(one_fn, donate_argnums=0)
    chunk = jax.jit(chunk_fn, donate_argnums=0) if n > 1 else None
    return one, chunk, n


def spans_processes(devices: Sequence) -> bool:
    """Whether `devices` belong to more than one process (a mesh across hosts)."""
    return len({d.process_index for d in devices}) > 1


def _metrics_everywhere(step_fn: Callable, mesh: Mesh) -> Callable:
    """`step_fn` with its metrics gathered onto every device (an all-gather of a few numbers per call)."""
    everywhere = NamedSharding(mesh, PartitionSpec())

    def step(*args):
        states, metrics = step_fn(*args)
        return states, jax.lax.with_sharding_constraint(metrics, everywhere)

    return step


def _put(x, sharding: NamedSharding):
    """`x` (the same value on every process) laid out as `sharding`, whose devices may span processes.

    `jax.device_put` only reaches this process's devices; across processes each one builds the
    global array from its own slices of its copy of `x`.
    """
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_put(jax.random.key_data(x), sharding), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _shard(tree, mesh: Mesh):
    sharding = NamedSharding(mesh, PartitionSpec("runs"))
    return jax.tree_util.tree_map(lambda x: _put(x, sharding), tree)


def _everywhere(tree, mesh: Mesh):
    """Every array of `tree` gathered onto every device of `mesh`: readable by every process."""
    return jax.jit(lambda t: t, out_shardings=NamedSharding(mesh, PartitionSpec()))(tree)


def _any_process(flag: bool) -> bool:
    """True on every process when `flag` is true on any one of them (a signal seen by one stops all)."""
    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def _pad_runs(tree, k_padded: int):
    """Repeat the last run until there are k_padded (the extra runs are dropped afterwards)."""

    def pad(x):
        extra = k_padded - x.shape[0]
        return x if extra == 0 else jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)])

    return jax.tree_util.tree_map(pad, tree)


@dataclasses.dataclass(frozen=True)
class Runs:
    """K runs of one shape, set up as `fit_runs` fits them (`prepare_runs`).

    `state` is in the layout the steps take: a list of K states ('sequential'), or one state
    stacked over the runs and padded to a multiple of the devices ('vmap'). `one(state, *args)`
    takes one step of every run, `chunk(state, *args)` (or None) `steps_per_call` steps;
    both return (state, metrics) with a trailing run axis on the metrics.
    """

    method: str
    k: int
    state: Any
    one: Callable
    chunk: Optional[Callable]
    steps_per_call: int
    args: tuple  # (zs, observations, operator, cleans), laid out as the steps take them
    render: Callable  # state -> the final images (K, H, W, C)
    mesh: Optional[Mesh] = None  # the devices' mesh, when the runs are split over several

    def stacked(self, state) -> fit_lib.FitState:
        """A state of the steps' layout as one state stacked over the K runs."""
        if self.method == "sequential":
            return _stack(state)
        return jax.tree_util.tree_map(lambda x: x[: self.k], state)

    def all_stopped(self, state) -> bool:
        """Whether every run's stopping rule has stopped, read off the flags alone (checked after every
        compiled call: stacking the whole state there would copy every run's parameters each time)."""
        if self.method == "sequential":
            return all(bool(s.stopping.stopped) for s in state)
        return bool(jnp.all(state.stopping.stopped[: self.k]))

    def history(self, history: dict) -> dict:
        """The loop's history, (T, runs), as (K, T)."""
        return {name: np.moveaxis(np.asarray(v)[:, : self.k], 0, 1) for name, v in history.items()}


def prepare_runs(
    net,
    zs: jax.Array,
    observations: jax.Array,
    operator: Operator,
    config: fit_lib.FitConfig,
    keys: jax.Array,
    *,
    cleans: Optional[jax.Array] = None,
    crop: Optional[tuple] = None,
    method: str = "auto",
    devices: Optional[Sequence] = None,
    state: Optional[fit_lib.FitState] = None,
    per_run_operator: bool = False,
) -> Runs:
    """The initial (or given, stacked) state of K runs and their compiled steps; see `fit_runs`."""
    k = int(keys.shape[0])
    if zs.shape[0] != k or observations.shape[0] != k or (cleans is not None and cleans.shape[0] != k):
        raise ValueError("zs, observations, cleans and keys need the same number of runs")
    devices = list(devices) if devices is not None else jax.devices()
    out_h, out_w, _ = operator.output_shape(observations.shape[1:])
    method = choose_method(method, devices[0].platform, len(devices), out_h * out_w)
    if method == "sequential" and spans_processes(devices):
        raise ValueError("method='sequential' runs on one device; the devices given span several processes "
                         "(use 'vmap', or pass devices=jax.local_devices())")
    if state is not None and spans_processes(devices):
        raise ValueError("continuing from a state (a checkpoint) is for devices of one process")
    problem = fit_lib.Problem(net, None if crop is None else tuple(crop))
    zs = jnp.asarray(zs, jnp.float32)
    observations = jnp.asarray(observations, jnp.float32)
    cleans = None if cleans is None else jnp.asarray(cleans, jnp.float32)
    fit_lib.check_shapes(net, problem, zs[0], observations[0], _run_operator(operator, 0, per_run_operator),
                         None if cleans is None else cleans[0], keys[0])
    init = functools.partial(fit_lib.initial_state, net, config=config, problem=problem)
    render = functools.partial(fit_lib.render_final, problem=problem, config=config)
    cfg = fit_lib.step_config(config)

    if method == "sequential":
        one, chunk, n = fit_lib.compiled_steps(problem, cfg, devices[0].platform)
        if state is None:
            init_one = fit_lib.compile_once(init, zs[0], keys[0])
            states = [init_one(zs[i], keys[i]) for i in range(k)]
        else:
            states = [jax.tree_util.tree_map(lambda x, i=i: x[i], state) for i in range(k)]

        def render_k(states):
            render_one = fit_lib.compile_once(render, states[0], zs[0])
            return jnp.stack([render_one(states[i], zs[i]) for i in range(k)])

        return Runs(method, k, states, _sequential(one, k, per_run_operator),
                    None if chunk is None else _sequential(chunk, k, per_run_operator), n,
                    (zs, observations, operator, cleans), render_k)

    k_padded = -(-k // len(devices)) * len(devices)
    run_args = _pad_runs((zs, observations, keys, cleans, operator if per_run_operator else None), k_padded)
    if state is not None:
        state = _pad_runs(state, k_padded)
    mesh = Mesh(np.array(devices), ("runs",)) if len(devices) > 1 else None
    if mesh is not None:
        run_args, state = _shard((run_args, state), mesh)
    zs_p, obs_p, keys_p, cleans_p, operator_p = run_args
    operator_p = operator_p if per_run_operator else operator
    init_v, render_v = jax.vmap(init), jax.vmap(render)
    if mesh is not None:  # each device on its own runs, as the steps (see vmapped_steps)
        runs = PartitionSpec("runs")
        init_v = jax.shard_map(init_v, mesh=mesh, in_specs=(runs, runs), out_specs=runs)
        render_v = jax.shard_map(render_v, mesh=mesh, in_specs=(runs, runs), out_specs=runs)
    if state is None:
        state = fit_lib.compile_once(init_v, zs_p, keys_p)(zs_p, keys_p)
    one, chunk, n = vmapped_steps(problem, cfg, devices[0].platform, tuple(devices) if mesh is not None else None,
                                  per_run_operator)
    return Runs(method, k, state, one, chunk, n, (zs_p, obs_p, operator_p, cleans_p),
                lambda s: fit_lib.compile_once(render_v, s, zs_p)(s, zs_p)[:k], mesh)


def fit_runs(
    net,
    zs: jax.Array,
    observations: jax.Array,
    operator: Operator,
    config: fit_lib.FitConfig,
    keys: jax.Array,
    *,
    cleans: Optional[jax.Array] = None,
    crop: Optional[tuple] = None,
    method: str = "auto",
    devices: Optional[Sequence] = None,
    callback: Optional[Callable] = None,
    state: Optional[fit_lib.FitState] = None,
    checkpoint_every: int = 0,
    checkpoint_fn: Optional[Callable] = None,
    interrupted: Optional[Callable[[], bool]] = None,
    per_run_operator: bool = False,
) -> RunsResult:
    """Fit K runs of one shape: zs (K, 1, H, W, C), observations (K, ...), keys (K,).

    `state` (stacked over the K runs, e.g. from a checkpoint) continues a fit from its step.
    With `checkpoint_every` and `checkpoint_fn`, `checkpoint_fn(state, history)` is called as
    `fit.run_loop` says, with the state stacked over the runs and the history of this call's
    steps as (K, T) arrays; save it inside the call (the state is donated to the next step).
    `interrupted()`, checked after every compiled call, ends the fit early when true (a signal
    handler's flag): the result is the state reached, its history as long as the steps taken.
    With `per_run_operator`, `operator`'s arrays have a leading axis of the K runs (one mask per
    tile of an image, say), its static fields shared.
    """
    runs = prepare_runs(net, zs, observations, operator, config, keys, cleans=cleans, crop=crop, method=method,
                        devices=devices, state=state, per_run_operator=per_run_operator)
    # with stop_at_detection, steps after a run's stop leave it as it was; the loop ends when all have stopped
    rule_stopped = None
    if config.stop_at_detection and config.early_stopping != "none":
        rule_stopped = runs.all_stopped
    stopped = rule_stopped
    across = runs.mesh is not None and spans_processes(runs.mesh.devices.flat)
    if across and checkpoint_fn is not None:
        raise ValueError("checkpoints are for devices of one process; pass devices=jax.local_devices() to save them")
    if interrupted is not None:
        asked = (lambda: _any_process(interrupted())) if across else interrupted  # noqa: E731
        stopped = lambda s: asked() or (rule_stopped is not None and rule_stopped(s))  # noqa: E731
    on_checkpoint = None
    if checkpoint_fn is not None:
        on_checkpoint = lambda s, h: checkpoint_fn(runs.stacked(s), runs.history(h) if h else {})  # noqa: E731
    start = 0 if state is None else int(jnp.max(state.step))
    loop_state, history = fit_lib.run_loop(
        runs.one, runs.chunk, runs.steps_per_call, runs.state, runs.args, start, config.num_iter, callback,
        stopped=stopped, checkpoint_every=checkpoint_every, checkpoint_fn=on_checkpoint,
    )
    finals = runs.render(loop_state)
    state = runs.stacked(loop_state)
    emas = finals if config.ema_decay is None else state.ema
    if runs.mesh is not None:  # the images onto every device (and process), which writes or scores them;
        # the mean and std over seeds are then the same sums whatever the mesh; the state stays split
        finals, emas = _everywhere((finals, emas), runs.mesh)
    return RunsResult(finals=finals, emas=emas, history=runs.history(history) if history else {}, state=state)


def seed_keys(key: jax.Array, num_seeds: int) -> jax.Array:
    """Seed i's key: fold_in(key, i). Seed 0 of K seeds is the single-seed run with the same `key`."""
    return jnp.stack([jax.random.fold_in(key, i) for i in range(num_seeds)])


def codes(keys: jax.Array, net, height: int, width: int, input_config: InputConfig, input_image=None):
    """Each seed's code z and fit key, split exactly as `restore` splits a single key."""
    pairs = [jax.random.split(key) for key in keys]
    zs, crop = [], None
    for z_key, _ in pairs:
        z, crop = make_code(z_key, net, height, width, input_config, input_image)
        zs.append(z)
    return jnp.stack(zs), jnp.stack([fit_key for _, fit_key in pairs]), crop


def initial_state(observation: jax.Array, operator: Operator, net, config: fit_lib.FitConfig, keys: jax.Array, *,
                  input_config: InputConfig = DEFAULT_INPUT, input_image: Optional[jax.Array] = None):
    """The state of `fit_seeds(observation, ..., keys)` before its first step, stacked over the seeds.

    What a checkpoint of that fit restores into (`dip_jax.checkpoint.restore`'s template).
    """
    out_h, out_w, _ = operator.output_shape(jnp.shape(observation))
    zs, fit_keys, crop = codes(keys, net, out_h, out_w, input_config, input_image)
    init = jax.vmap(functools.partial(fit_lib.initial_state, net, config=config,
                                      problem=fit_lib.Problem(net, crop)))
    return fit_lib.compile_once(init, zs, fit_keys)(zs, fit_keys)


def _seeds_result(runs: RunsResult) -> SeedsResult:
    return SeedsResult(
        finals=runs.finals,
        emas=runs.emas,
        mean=jnp.mean(runs.emas, axis=0),
        std=jnp.std(runs.emas, axis=0),
        history=runs.history,
        state=runs.state,
    )


def fit_seeds(
    observation: jax.Array,
    operator: Operator,
    net,
    config: fit_lib.FitConfig,
    keys: jax.Array,
    *,
    input_config: InputConfig = DEFAULT_INPUT,
    input_image: Optional[jax.Array] = None,
    clean: Optional[jax.Array] = None,
    method: str = "auto",
    devices: Optional[Sequence] = None,
    seeds_per_chunk: Optional[int] = None,
    callback: Optional[Callable] = None,
    interrupted: Optional[Callable[[], bool]] = None,
    **resume_options,
) -> SeedsResult:
    """`restore(observation, ..., key)` for every key in `keys` (shape (K,)), fitted together.

    `seeds_per_chunk` fits the seeds in groups of that many, one group after another, when
    K at once does not fit in memory. `resume_options` (`state`, `checkpoint_every`,
    `checkpoint_fn`) go to `fit_runs`: the fit of all K seeds saved and continued as one.
    """
    return fit_images(
        [observation], operator, net, config, keys, input_config=input_config, input_image=input_image,
        cleans=None if clean is None else [clean], method=method, devices=devices,
        seeds_per_chunk=seeds_per_chunk, callback=callback, interrupted=interrupted, **resume_options,
    )[0]


def fit_images(
    observations: Sequence[jax.Array],
    operator,
    net,
    config: fit_lib.FitConfig,
    keys: jax.Array,
    *,
    input_config: InputConfig = DEFAULT_INPUT,
    input_image: Optional[jax.Array] = None,
    cleans: Optional[Sequence[jax.Array]] = None,
    method: str = "auto",
    devices: Optional[Sequence] = None,
    seeds_per_chunk: Optional[int] = None,
    callback: Optional[Callable] = None,
    interrupted: Optional[Callable[[], bool]] = None,
    **resume_options,
) -> list[Optional[SeedsResult]]:
    """Restore each image with every key in `keys`; one `SeedsResult` per image, in order.

    Images are grouped by shape and each group is fitted as images x seeds runs, so a group
    compiles once. Seed i of every image uses `keys[i]`, so an image's result does not depend
    on which other images were in the call. `resume_options` (`state`, `checkpoint_every`,
    `checkpoint_fn`; see `fit_runs`) need the whole call to be one fit: one image, one chunk.
    Once `interrupted()` is true the fit in progress ends (see `fit_runs`) and no other starts:
    the images of groups not started are None. `operator` is one operator for every image, or a
    sequence of one per image (the tiles of a large image, each with its part of a mask).
    """
    per_image_operators = isinstance(operator, (list, tuple))
    if per_image_operators and len(operator) != len(observations):
        raise ValueError(f"{len(operator)} operators for {len(observations)} observations")
    operator_of = (lambda i: operator[i]) if per_image_operators else (lambda i: operator)  # noqa: E731
    observations = [jnp.asarray(o, jnp.float32) for o in observations]
    if cleans is not None and len(cleans) != len(observations):
        raise ValueError(f"{len(cleans)} clean images for {len(observations)} observations")
    for i, o in enumerate(observations):
        if o.ndim != 3:
            raise ValueError(f"observation {i} is not HWC: shape {tuple(o.shape)}")
        if not bool(jnp.all(jnp.isfinite(o))):
            raise ValueError(f"observation {i} contains NaN or infinite values")
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    k = int(keys.shape[0])
    chunk = seeds_per_chunk or k
    if chunk < 1:
        raise ValueError(f"seeds_per_chunk must be >= 1, got {seeds_per_chunk}")
    groups: dict[tuple, list[int]] = {}
    for i, o in enumerate(observations):
        groups.setdefault(tuple(o.shape), []).append(i)
    if resume_options and (len(observations) > 1 or chunk < k):
        raise ValueError("a state or checkpoints go with one fit: one image, all seeds in one chunk")

    results: list[Optional[SeedsResult]] = [None] * len(observations)
    for shape, members in groups.items():
        if interrupted is not None and interrupted():
            break
        out_h, out_w, _ = operator_of(members[0]).output_shape(shape)
        zs, fit_keys, crop = codes(keys, net, out_h, out_w, input_config, input_image)
        per_image: dict[int, list[RunsResult]] = {i: [] for i in members}
        for start in range(0, k, chunk):
            if start and interrupted is not None and interrupted():
                break
            sl = slice(start, min(start + chunk, k))
            kk = sl.stop - sl.start
            # runs ordered image-major: run (j, s) = image members[j], seed start + s
            run_z = jnp.concatenate([zs[sl]] * len(members))
            run_keys = jnp.concatenate([fit_keys[sl]] * len(members))
            run_obs = jnp.stack([observations[i] for i in members for _ in range(kk)])
            run_clean = None
            if cleans is not None:
                run_clean = jnp.stack([jnp.asarray(cleans[i], jnp.float32) for i in members for _ in range(kk)])
            run_operator = operator
            if per_image_operators:  # one per run, stacked: image-major like the runs
                run_operator = _stack([operator[i] for i in members for _ in range(kk)])
            runs = fit_runs(net, run_z, run_obs, run_operator, config, run_keys, cleans=run_clean, crop=crop,
                            method=method, devices=devices, callback=callback, interrupted=interrupted,
                            per_run_operator=per_image_operators, **resume_options)
            for j, i in enumerate(members):
                part = jax.tree_util.tree_map(lambda x, j=j, kk=kk: x[j * kk : (j + 1) * kk], runs)
                per_image[i].append(part)
        for i, parts in per_image.items():
            merged = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs) if isinstance(xs[0], np.ndarray)
                                            else jnp.concatenate(xs), *parts)
            results[i] = _seeds_result(merged)
    return results
