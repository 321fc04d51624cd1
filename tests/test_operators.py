import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import operators


def test_denoising_simulates_clipped_gaussian_noise():
    clean = jnp.full((128, 128, 3), 0.5)
    y = np.asarray(operators.Denoising(25.0).simulate(clean, jax.random.key(0)))
    np.testing.assert_allclose((y - 0.5).std(), 25 / 255, rtol=0.02)
    dark = np.asarray(operators.Denoising(25.0).simulate(jnp.zeros((64, 64, 1)), jax.random.key(0)))
    assert dark.min() == 0.0 and np.mean(dark == 0) > 0.45  # clipped to [0, 1], not quantised
    assert len(np.unique(y)) > 1000


def test_denoising_is_identity_with_mse_data_term():
    op = operators.Denoising(10.0)
    x = jax.random.uniform(jax.random.key(1), (8, 8, 3))
    y = jax.random.uniform(jax.random.key(2), (8, 8, 3))
    np.testing.assert_array_equal(op.forward(x), x)
    np.testing.assert_allclose(op.data_term(x, y), np.mean((np.asarray(x) - np.asarray(y)) ** 2), rtol=1e-6)
    np.testing.assert_array_equal(op.baseline(y), y)
    assert op.output_shape((8, 8, 3)) == (8, 8, 3)


def test_denoising_simulation_is_deterministic_under_a_key():
    op = operators.Denoising(25.0)
    clean = jnp.full((8, 8, 3), 0.5)
    np.testing.assert_array_equal(op.simulate(clean, jax.random.key(7)), op.simulate(clean, jax.random.key(7)))
