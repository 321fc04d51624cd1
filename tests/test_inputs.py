import chex
import jax
import numpy as np
import pytest

from dip_jax import inputs


def test_uniform_noise_is_u_0_scale():
    z = np.asarray(inputs.noise(jax.random.key(0), 64, 48, 32))
    chex.assert_shape(z, (1, 64, 48, 32))
    assert z.min() >= 0 and z.max() < 0.1
    # U(0, 0.1): mean 0.05, variance 0.01 / 12 (REFERENCE §2: not zero-mean)
    np.testing.assert_allclose(z.mean(), 0.05, atol=1e-3)
    np.testing.assert_allclose(z.var(), 0.01 / 12, rtol=0.02)


def test_normal_noise_scale():
    z = np.asarray(inputs.noise(jax.random.key(0), 64, 64, 16, noise_type="n", scale=0.5))
    np.testing.assert_allclose(z.std(), 0.5, rtol=0.02)
    np.testing.assert_allclose(z.mean(), 0.0, atol=0.01)


def test_noise_is_deterministic_under_a_key():
    a = inputs.noise(jax.random.key(3), 8, 8, 2)
    chex.assert_trees_all_equal(a, inputs.noise(jax.random.key(3), 8, 8, 2))
    assert not np.array_equal(a, inputs.noise(jax.random.key(4), 8, 8, 2))


def test_meshgrid():
    z = np.asarray(inputs.meshgrid(3, 5))
    chex.assert_shape(z, (1, 3, 5, 2))
    np.testing.assert_allclose(z[0, :, :, 0], np.tile(np.arange(5) / 4, (3, 1)))  # x / (W - 1)
    np.testing.assert_allclose(z[0, :, :, 1], np.tile((np.arange(3) / 2)[:, None], (1, 5)))  # y / (H - 1)


def test_make_dispatches_and_rejects_unknown_kinds():
    img = np.full((4, 6, 3), 0.25, np.float32)
    chex.assert_trees_all_equal(inputs.make(None, "image", 4, 6, image=img), img[None])
    chex.assert_shape(inputs.make(jax.random.key(0), "meshgrid", 4, 6), (1, 4, 6, 2))
    with pytest.raises(ValueError, match="unknown input kind"):
        inputs.make(jax.random.key(0), "perlin", 4, 4)
    with pytest.raises(ValueError, match="needs an image"):
        inputs.make(jax.random.key(0), "image", 4, 4)


def test_offset_shifts_the_noise_codes():
    key = jax.random.key(3)
    z = inputs.make(key, "noise", 8, 8, 3, 0.1, offset=0.5)
    np.testing.assert_allclose(z, 0.5 + inputs.noise(key, 8, 8, 3), atol=1e-7)
    assert 0.5 <= float(z.min()) and float(z.max()) < 0.6  # the TV baselines' pixels: 0.5 + U(0, 0.1)
    np.testing.assert_array_equal(inputs.make(key, "noise_normal", 4, 4, 2), inputs.noise(key, 4, 4, 2, "n"))
