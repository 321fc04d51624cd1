"""Any image size: the code is padded, the output cropped back, every pixel restored."""

import chex
import jax
import jax.numpy as jnp
import pytest

from dip_jax import fit, inputs, models, operators
from dip_jax.restore import InputConfig, padded_geometry, restore


def test_hourglass_on_an_odd_size_keeps_every_pixel():
    net = models.hourglass([4, 4, 4], num_input_channels=2, pad="reflection")
    y = jax.random.uniform(jax.random.key(0), (30, 45, 3))
    ph, pw, crop = padded_geometry(net, 30, 45)
    assert (ph, pw) == (32, 48) and crop == (1, 1, 30, 45)
    r = restore(y, operators.Denoising(25.0), net, fit.FitConfig(num_iter=2), jax.random.key(1),
                input_config=InputConfig("noise", 2))
    chex.assert_shape(r.final, (30, 45, 3))
    chex.assert_shape(r.ema, (30, 45, 3))


def test_the_output_is_the_centre_window_of_the_padded_render():
    net = models.hourglass([4, 4], num_input_channels=2)
    y = jnp.full((6, 10, 3), 0.5)
    config = fit.FitConfig(num_iter=1, final_input="clean")
    key = jax.random.key(1)
    r = restore(y, operators.Denoising(25.0), net, config, key, input_config=InputConfig("noise", 2))
    z_key, _ = jax.random.split(key)
    z = inputs.noise(z_key, 8, 12, 2)  # the code is made at the padded size, 8 x 12
    full = net.apply({"params": r.state.params}, z)[0]
    chex.assert_trees_all_close(r.final, full[1:7, 1:11], atol=1e-6)


def test_restore_is_pure_in_its_key():
    net = models.hourglass([4, 4], num_input_channels=2)
    y = jax.random.uniform(jax.random.key(0), (8, 8, 3))
    a = restore(y, operators.Denoising(25.0), net, fit.FitConfig(num_iter=2), jax.random.key(3),
                input_config=InputConfig("noise", 2))
    b = restore(y, operators.Denoising(25.0), net, fit.FitConfig(num_iter=2), jax.random.key(3),
                input_config=InputConfig("noise", 2))
    chex.assert_trees_all_equal(a.final, b.final)


def test_errors_for_bad_inputs():
    net = models.get("standard")
    with pytest.raises(ValueError, match="too small for the net's 5 levels"):
        padded_geometry(net, 12, 200)
    y = jnp.zeros((64, 64, 3))
    with pytest.raises(ValueError, match="NaN"):
        restore(y.at[0, 0, 0].set(jnp.nan), operators.Denoising(25.0), net, fit.FitConfig(num_iter=1),
                jax.random.key(0))
    with pytest.raises(ValueError, match="net outputs 3"):
        restore(jnp.zeros((64, 64, 1)), operators.Denoising(25.0), net, fit.FitConfig(num_iter=1), jax.random.key(0))
    with pytest.raises(ValueError, match="net takes 32"):
        restore(y, operators.Denoising(25.0), net, fit.FitConfig(num_iter=1), jax.random.key(0),
                input_config=InputConfig("noise", 3))
