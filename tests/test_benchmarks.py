"""The benchmarks' own arithmetic: FLOP counts read off jaxprs against closed forms."""

import jax
import jax.numpy as jnp

from benchmarks.speed import conv_flops


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
