"""What a fit needs in memory, read off XLA's compiled step before the first step, and what the device has.

`fit_memory` lowers and compiles the very step the fit will run (the same cached jitted
function, so the fit reuses the compilation) on abstract inputs and reads XLA's buffer
assignment: arguments, outputs, what the donated state lets outputs share, and temporaries
(the activations kept for the backward pass). That is exact for the backend, unlike a count of
activations by hand. `available_bytes` is what the device has free: the allocator's limit less
what is in use on an accelerator, the kernel's MemAvailable (and a cgroup limit) on a CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp

from dip_jax import ensemble
from dip_jax import fit as fit_lib
from dip_jax.operators.base import Operator
from dip_jax.restore import code_shape, padded_geometry

GB = 1e9


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Bytes a fit of `runs` runs holds at its peak, from XLA's memory analysis of its compiled step."""

    runs: int  # runs fitted at once (seeds x images of one shape)
    method: str  # 'sequential' or 'vmap'
    pixels: int  # of the restored image
    state_bytes: int  # one run's state: parameters, optimiser moments, averaged output, ...
    step_bytes: int  # the peak of one compiled call (its arguments, outputs and temporaries)
    total_bytes: int  # what the fit holds: every run's state and inputs, and one call's working set
    input_bytes: int = 0  # one run's inputs: its code z, observation and clean image

    def per_run_bytes(self) -> float:
        """What one more run adds (its state and inputs, sequentially; its share of the vmapped step otherwise)."""
        if self.method == "sequential":
            return self.state_bytes + self.input_bytes
        return self.total_bytes / self.runs


def _peak(compiled) -> int:
    stats = compiled.memory_analysis()
    # the donated state is updated in place: outputs that alias arguments take no new memory
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
               + stats.temp_size_in_bytes)


def fit_memory(net, observation_shape, operator: Operator, config: fit_lib.FitConfig, runs: int = 1, *,
               method: str = "auto", with_clean: bool = False, devices=None) -> Estimate:
    """The memory of fitting `runs` runs of one observation shape, as `ensemble.fit_runs` would run them."""
    devices = list(devices) if devices is not None else jax.devices()
    out_h, out_w, _ = operator.output_shape(tuple(observation_shape))
    method = ensemble.choose_method(method, devices[0].platform, len(devices), out_h * out_w)
    _, _, crop = padded_geometry(net, out_h, out_w)
    problem = fit_lib.Problem(net, crop)
    z = jax.ShapeDtypeStruct(code_shape(net, out_h, out_w), jnp.float32)
    init = functools.partial(fit_lib.initial_state, net, config=config, problem=problem)
    state = jax.eval_shape(init, z, jax.random.key(0))
    state_bytes = sum(int(x.size) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state)
                      if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key))
    observation = jax.ShapeDtypeStruct(tuple(observation_shape), jnp.float32)
    clean = jax.ShapeDtypeStruct((out_h, out_w, observation_shape[-1]), jnp.float32) if with_clean else None
    cfg = fit_lib.step_config(config)
    if method == "sequential":
        # the runs wait their turn with their state and inputs in memory (the code z is the largest:
        # 32 channels at the restored size, 10x the image), while one call's working set is live
        input_bytes = sum(int(math.prod(x.shape)) * 4 for x in (z, observation, clean) if x is not None)
        one, chunk, _ = fit_lib.compiled_steps(problem, cfg, devices[0].platform)
        step = _peak((chunk or one).lower(state, z, observation, operator, clean).compile())
        waiting = (runs - 1) * (state_bytes + input_bytes)
        return Estimate(runs, method, out_h * out_w, state_bytes, step, step + waiting, input_bytes)
    per_device = math.ceil(runs / len(devices))
    stack = lambda x: jax.ShapeDtypeStruct((per_device, *x.shape), x.dtype)  # noqa: E731
    args = jax.tree_util.tree_map(stack, (state, z, observation))
    clean = None if clean is None else stack(clean)
    one, chunk, _ = ensemble.vmapped_steps(problem, cfg, devices[0].platform, None)
    step = _peak((chunk or one).lower(*args, operator, clean).compile())  # every run's inputs are its arguments
    return Estimate(runs, method, out_h * out_w, state_bytes, step, step)


def _cgroup_free() -> Optional[int]:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            current = int(f.read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - current


def available_bytes(device=None) -> Optional[int]:
    """Free memory of `device` (default: the first), or None where it cannot be read."""
    device = device or jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return None
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except OSError:
        pass
    cgroup = _cgroup_free()
    return min(x for x in (free, cgroup) if x is not None) if (free or cgroup) else None


def process_bytes() -> Optional[int]:
    """This process's resident memory (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def largest_side(estimate: Estimate, available: int, multiple: int = 64, image: Optional[tuple] = None,
                 overlap: int = 0) -> int:
    """The side of the largest square tile (a multiple of `multiple`) whose fit needs at most `available`.

    Activations and the image-sized parts of the state grow with the pixel count, the
    parameters do not; taking everything as proportional to the pixels errs on the safe side.
    With `image` = (height, width) of the whole image and the tiles' `overlap`, the tiles
    waiting their turn count too (their states and codes: a fitted one at a time, sequentially;
    all of them in one step under vmap).
    """
    side = int(math.sqrt(estimate.pixels * available / estimate.total_bytes) // multiple * multiple)
    if image is None:
        return side
    from dip_jax import tiles  # the tile grid the driver would cut

    per_run = estimate.total_bytes / estimate.runs
    while side > max(multiple, overlap):
        count = len(tiles.TileGrid(image[0], image[1], side, overlap))
        scale = side * side / estimate.pixels
        if estimate.method == "sequential":
            need = scale * (estimate.step_bytes + (count - 1) * (estimate.state_bytes + estimate.input_bytes))
        else:
            need = scale * per_run * count
        if need <= available:
            return side
        side -= multiple
    return 0


def check_fits(estimate: Estimate, available: Optional[int], what: str, image: Optional[tuple] = None,
               overlap: int = 0) -> None:
    """MemoryError in one line when `estimate` exceeds `available`, saying what would fit (for the tile
    size, `image` and `overlap` as `largest_side` takes them)."""
    if available is None or estimate.total_bytes <= available:
        return
    hints = []
    if estimate.runs > 1:
        fit_runs = int((available - (estimate.total_bytes - estimate.runs * estimate.per_run_bytes()))
                       // estimate.per_run_bytes())
        if fit_runs >= 1:
            hints.append(f"{fit_runs} run(s) at once fit (--config.seeds_per_chunk={fit_runs})")
    side = largest_side(estimate, available, image=image, overlap=overlap)
    if side:
        hints.append(f"tiles of at most {side}x{side} pixels fit (--tile={side})")
    if jax.default_backend() != "cpu":
        hints.append("--config.remat=True saves activations on accelerators")
    raise MemoryError(f"{what} needs about {estimate.total_bytes / GB:.1f} GB (XLA's estimate of one step on "
                      f"{jax.default_backend()}), and {available / GB:.1f} GB are free: " + "; ".join(hints or [
                          "use a smaller image"]))


def bytes_text(n: float) -> str:
    return f"{n / GB:.2f} GB" if n >= 0.1 * GB else f"{n / 2**20:.0f} MB"


__all__ = ["Estimate", "available_bytes", "bytes_text", "check_fits", "fit_memory", "largest_side"]
