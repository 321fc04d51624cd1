"""dip_jax.memory: the estimate is XLA's own for the step the fit runs; refusals say what fits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config, tiny_skip
from jax import monitoring

from dip_jax import fit, inputs, memory, operators
from dip_jax.restore import code_shape
from experiments import restore_lib

CONFIG = fit.FitConfig(backtrack=True)


def small_net():
    return tiny_skip(num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 2))


def test_the_estimate_counts_the_state_of_every_run():
    net = small_net()
    one = memory.fit_memory(net, (16, 16, 3), operators.Denoising(25.0), CONFIG, runs=1, method="sequential")
    # the state is that of a real fit
    state = fit.init_state(net, inputs.noise(jax.random.key(0), 16, 16, 4), CONFIG, jax.random.key(1))
    leaves = [x for x in jax.tree_util.tree_leaves(state) if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]
    assert one.state_bytes == sum(x.size * x.dtype.itemsize for x in leaves)
    assert one.step_bytes > one.state_bytes and one.total_bytes == one.step_bytes
    z_bytes = 4 * int(np.prod(code_shape(net, 16, 16)))
    assert one.input_bytes == z_bytes + 16 * 16 * 3 * 4  # the code and the observation (no clean image)
    three = memory.fit_memory(net, (16, 16, 3), operators.Denoising(25.0), CONFIG, runs=3, method="sequential")
    # the other runs' states and inputs wait in memory
    assert three.total_bytes == one.total_bytes + 2 * (one.state_bytes + one.input_bytes)
    scored = memory.fit_memory(net, (16, 16, 3), operators.Denoising(25.0), CONFIG, runs=1, method="sequential",
                               with_clean=True)
    assert scored.input_bytes == one.input_bytes + 16 * 16 * 3 * 4
    vmapped = memory.fit_memory(net, (16, 16, 3), operators.Denoising(25.0), CONFIG, runs=3, method="vmap")
    assert vmapped.total_bytes > 2 * one.step_bytes  # three runs' activations at once
    bigger = memory.fit_memory(net, (32, 32, 3), operators.Denoising(25.0), CONFIG, runs=1, method="sequential")
    assert 2.5 < bigger.total_bytes / one.total_bytes < 4.5  # about the pixel count


def test_the_fit_reuses_the_compilation_of_the_estimate():
    compiled = []
    monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiled.append(name) if name.endswith("backend_compile_duration") else None)
    net = small_net()
    memory.fit_memory(net, (24, 24, 3), operators.Denoising(25.0), CONFIG, runs=1, method="sequential")
    one, _, _ = fit.compiled_steps(fit.Problem(net), fit.step_config(CONFIG), "cpu")
    z = inputs.noise(jax.random.key(0), 24, 24, 4)
    y = jnp.zeros((24, 24, 3))
    state = fit.init_state(net, z, CONFIG, jax.random.key(1))
    compiled.clear()
    jax.block_until_ready(one(state, z, y, operators.Denoising(25.0), None))
    assert compiled == []  # the step the estimate compiled is the one the fit runs


def test_a_fit_that_does_not_fit_is_refused_in_one_line():
    estimate = memory.Estimate(runs=4, method="sequential", pixels=4000 * 3000, state_bytes=int(0.04e9),
                               step_bytes=int(90e9), total_bytes=int(90.12e9))
    memory.check_fits(estimate, int(100e9), "x")  # fits: nothing raised
    memory.check_fits(estimate, None, "x")  # unknown free memory: no refusal
    with pytest.raises(MemoryError) as e:
        memory.check_fits(estimate, int(20e9), "restoring a 4000x3000 image")
    message = str(e.value)
    assert "\n" not in message and "needs about 90.1 GB" in message and "20.0 GB are free" in message
    side = memory.largest_side(estimate, int(20e9))
    assert side % 64 == 0 and side * side <= 4000 * 3000 * 20 / 90.12 < (side + 64) ** 2
    assert f"tiles of at most {side}x{side} pixels fit (--tile={side})" in message


def test_available_memory_is_read():
    free = memory.available_bytes()
    assert free is None or free > 0


def test_the_driver_refuses_before_writing_anything(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000)
    with pytest.raises(MemoryError, match="needs about .* GB .* 0.0 GB are free"):
        restore_lib.run(tiny_config(), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_suggested_tile_counts_the_tiles_waiting_their_turn():
    """A 4000x3000 photo: the suggested tile's step plus every other tile's state and code fit; 64 more do not."""
    pixels = 4000 * 3000
    estimate = memory.Estimate(runs=1, method="sequential", pixels=pixels, state_bytes=int(0.04e9),
                               step_bytes=int(90e9), total_bytes=int(90e9), input_bytes=pixels * 35 * 4)

    def need(side, overlap=32):  # written out: tiles per axis, each tile's share of the estimate
        count = math.prod(math.ceil((n - side) / (side - overlap)) + 1 for n in (3000, 4000))
        per_pixel = side * side / pixels
        return per_pixel * (90e9 + (count - 1) * (0.04e9 + pixels * 35 * 4))

    side = memory.largest_side(estimate, int(20e9), image=(3000, 4000), overlap=32)
    assert side % 64 == 0 and need(side) <= 20e9 < need(side + 64)
    assert side < memory.largest_side(estimate, int(20e9))  # the waiting tiles take their share
    with pytest.raises(MemoryError, match=f"--tile={side}"):
        memory.check_fits(estimate, int(20e9), "x", image=(3000, 4000), overlap=32)
