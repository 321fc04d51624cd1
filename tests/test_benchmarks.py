"""The benchmarks' own arithmetic: FLOP counts read off jaxprs against closed forms."""

import chex
import jax
import jax.numpy as jnp
import pytest

from benchmarks.measure import conv_flops


def test_conv_flops_closed_form():
    x = jnp.zeros((1, 16, 12, 8))
    w = jnp.zeros((3, 3, 8, 4))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    forward = 2 * 16 * 12 * 4 * 8 * 3 * 3
    assert conv_flops(jax.make_jaxpr(conv)(x, w).jaxpr) == forward
    # forward + input gradient + weight gradient: three convolutions of the same cost
    grads = jax.make_jaxpr(jax.grad(lambda x, w: jnp.sum(conv(x, w)), argnums=(0, 1)))(x, w)
    assert conv_flops(grads.jaxpr) == 3 * forward
    # stride 2 halves each output side; nested jaxprs (jit) are counted too
    strided = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")))
    assert conv_flops(jax.make_jaxpr(strided)(x, w).jaxpr) == forward / 4


def test_conv_flops_counts_1x1_convolutions_run_as_matrix_products():
    from dip_jax.models import layers

    x, w = jnp.zeros((2, 16, 12, 8)), jnp.zeros((1, 1, 8, 4))

    def conv(x, w, f):
        return f(x, w, (1, 1), "VALID", dimension_numbers=jax.lax.conv_dimension_numbers(
            x.shape, w.shape, ("NHWC", "HWIO", "NHWC")))

    forward = 2 * 2 * 16 * 12 * 4 * 8
    for f in (jax.lax.conv_general_dilated, layers.pointwise_conv):
        assert conv_flops(jax.make_jaxpr(lambda x, w, f=f: conv(x, w, f))(x, w).jaxpr) == forward
        grads = jax.make_jaxpr(jax.grad(lambda x, w, f=f: jnp.sum(conv(x, w, f)), argnums=(0, 1)))(x, w)
        assert conv_flops(grads.jaxpr) == 3 * forward


def test_step_memory_counts_the_state_of_every_seed():
    from conftest import tiny_skip

    from benchmarks.measure import step_memory
    from dip_jax import fit, inputs

    net = tiny_skip(num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 2))
    one, two = step_memory(net, 1, 16), step_memory(net, 2, 16)
    # the state is that of a real fit, once per seed
    state = fit.init_state(net, inputs.noise(jax.random.key(0), 16, 16, 4), fit.FitConfig(backtrack=True),
                           jax.random.key(1))
    leaves = [x for x in jax.tree_util.tree_leaves(state) if hasattr(x, "size") and x.dtype != jax.dtypes.prng_key]
    assert one["state_bytes"] == sum(x.size * x.dtype.itemsize for x in leaves)
    assert two["state_bytes"] == 2 * one["state_bytes"]
    for m in (one, two):
        assert m["argument_bytes"] >= m["state_bytes"] and m["peak_bytes"] >= m["argument_bytes"] + m["temp_bytes"] // 2
    assert two["temp_bytes"] > one["temp_bytes"]


def test_seeds_benchmark_methods_take_the_same_step():
    """The seeds benchmark times the same computation whichever way the seeds run."""
    from conftest import tiny_skip

    from benchmarks.measure import seeds_stepper as stepper

    net = tiny_skip(num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 2))
    losses = {}
    for method in ("sequential", "vmap", "sharded"):
        state, step = stepper(net, 2, method, 16)
        _, m = step(state)
        losses[method] = m["loss"]
    assert losses["sequential"].shape == (2,)
    assert float(losses["sequential"][0]) != float(losses["sequential"][1])  # two different seeds
    chex.assert_trees_all_close(losses["vmap"], losses["sequential"], rtol=1e-5)
    chex.assert_trees_all_close(losses["sharded"], losses["sequential"], rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 10, 10, 3), (1, 9, 12, 2)])  # even and odd output sides
def test_winograd_convolution_equals_direct(shape):
    """The Winograd variant that benchmarks/convolutions.py times computes the same convolution."""
    from benchmarks.measure import conv3x3_direct as direct
    from benchmarks.measure import conv3x3_winograd as winograd

    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, (3, 3, shape[-1], 4))
    chex.assert_trees_all_close(winograd(x, w), direct(x, w), atol=1e-5)
    grads = [jax.grad(lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1))(x, w) for f in (winograd, direct)]
    chex.assert_trees_all_close(grads[0], grads[1], atol=1e-4)


def test_profile_sums_op_events_by_kind():
    from benchmarks.measure import op_times

    events = [
        {"ph": "X", "name": "transpose_copy_fusion", "dur": 3000},
        {"ph": "X", "name": "transpose_copy_fusion.9", "dur": 1000},
        {"ph": "X", "name": "convolution.34", "dur": 2000},
        {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 99000},  # the runtime around ops
        {"ph": "i", "name": "convolution.35", "dur": 5000},  # not a complete event
    ]
    by_kind, by_op = op_times(events, steps=2)
    assert by_kind == {"transpose_copy_fusion": 2.0, "convolution": 1.0}
    assert by_op == {"transpose_copy_fusion": 1.5, "transpose_copy_fusion.9": 0.5, "convolution.34": 1.0}
