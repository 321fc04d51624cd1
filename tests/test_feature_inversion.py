"""FeatureInversion: its data term against a direct computation, its geometry, and short fits.

The classifier is the real EfficientNet-Lite0 on 64x64 images (it pools globally, so any size
works), which keeps every compilation small.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_skip
from skimage import data

from dip_jax import classifiers, ensemble, fit, models, operators
from dip_jax.restore import InputConfig

LAYER = "blocks.5"


@pytest.fixture(scope="module")
def cat64():
    return jnp.asarray(classifiers.center_crop_resize(data.chelsea() / 255.0, 64))


@jax.jit
def _data_term(op, x, y):
    return op.data_term(x, y)


def test_data_term_is_the_mse_of_the_layers_activations(efficientnet, cat64):
    op = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64), output_size=(80, 80))
    x = jax.random.uniform(jax.random.key(0), (80, 80, 3))
    phi_x = efficientnet.activations(x[:64, :64], LAYER)  # the top-left window, as the notebook crops
    phi_y = efficientnet.activations(cat64, LAYER)
    chex.assert_shape(phi_x, (4, 4, 80))
    want = float(jnp.mean(jnp.square(phi_x - phi_y)))
    got = float(_data_term(op, x, cat64))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert want > 0.1
    relative = operators.FeatureInversion(efficientnet, LAYER, loss="relative", image_size=(64, 64),
                                          output_size=(80, 80))
    np.testing.assert_allclose(float(_data_term(relative, x, cat64)),
                               float(jnp.sum(jnp.square(phi_x - phi_y)) / jnp.sum(jnp.square(phi_y))), rtol=1e-5)
    # pixels outside the window do not count; the image itself scores 0
    np.testing.assert_allclose(float(_data_term(op, x.at[64:, :].set(0.0).at[:, 64:].set(1.0), cat64)), got, rtol=1e-6)
    assert float(_data_term(op, jnp.pad(cat64, ((0, 16), (0, 16), (0, 0))), cat64)) == 0.0


def test_gradient_flows_to_the_window_only_and_not_to_the_target(efficientnet, cat64):
    op = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64), output_size=(72, 72))
    x = jax.random.uniform(jax.random.key(1), (72, 72, 3))
    gx, gy = jax.jit(jax.grad(lambda o, x, y: o.data_term(x, y), argnums=(1, 2)))(op, x, cat64)
    assert float(jnp.abs(gx[:64, :64]).max()) > 0
    assert float(jnp.abs(gx[64:]).max()) == 0 and float(jnp.abs(gx[:, 64:]).max()) == 0
    assert float(jnp.abs(gy).max()) == 0  # Φ(y) is a constant target


def test_geometry_and_validation(efficientnet, cat64):
    op = operators.FeatureInversion(efficientnet, "fc")
    assert op.crop_size == (224, 224) and op.net_size == (224, 224)  # the classifier's size, no crop
    notebook = operators.FeatureInversion(efficientnet, "head", output_size=(256, 256))
    assert notebook.output_shape((224, 224, 3)) == (256, 256, 3)
    chex.assert_shape(notebook.forward(jnp.zeros((256, 256, 3))), (224, 224, 3))
    small = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64))
    np.testing.assert_array_equal(small.simulate(cat64, jax.random.key(0)), cat64)
    with pytest.raises(ValueError, match="the observation is 32x32"):
        small.output_shape((32, 32, 3))
    with pytest.raises(ValueError, match="smaller than the classifier's input"):
        operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64), output_size=(48, 64))
    with pytest.raises(ValueError, match="no layer 'fc6'"):
        operators.FeatureInversion(efficientnet, "fc6")
    with pytest.raises(ValueError, match="unknown loss"):
        operators.FeatureInversion(efficientnet, LAYER, loss="l1")


def test_operator_is_a_pytree_of_the_weights(efficientnet):
    a = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64))
    b = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64))
    leaves, treedef = jax.tree_util.tree_flatten(a)
    assert len(leaves) == len(jax.tree_util.tree_leaves(efficientnet.variables))
    assert treedef == jax.tree_util.tree_structure(b)  # equal static fields: one compiled step serves both
    assert treedef != jax.tree_util.tree_structure(operators.FeatureInversion(efficientnet, "blocks.6"))


def test_deep_prior_fit_lowers_the_feature_distance(efficientnet, cat64):
    op = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64), output_size=(72, 72))
    net = tiny_skip()
    z = 0.1 * jax.random.uniform(jax.random.key(0), (1, 72, 72, 4))
    config = fit.FitConfig(num_iter=40, lr=0.01, reg_noise_std=0.0, ema_decay=None)
    r = fit.fit(net, z, cat64, op, config, jax.random.key(1))
    loss = r.history["loss"]
    chex.assert_shape(r.final, (72, 72, 3))
    print(f"feature inversion, deep prior: loss {loss[0]:.2f} -> {loss[-1]:.2f}")
    assert loss[-1] < 0.5 * loss[0]  # measured: 69.8 -> 11.3
    np.testing.assert_allclose(float(_data_term(op, r.final, cat64)), loss[-1], rtol=0.2)


def test_tv_prior_baseline_and_seeds_need_nothing_new(efficientnet, cat64):
    """The TV baseline optimises pixels; several seeds with early stopping run through the ensemble."""
    op = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64))
    tv = operators.Regularized(op, tv_weight=1e-3)
    z = 0.1 * jax.random.uniform(jax.random.key(0), (1, 64, 64, 3))
    config = fit.FitConfig(num_iter=30, lr=0.01, reg_noise_std=0.0, ema_decay=None)
    r = fit.fit(models.PixelImage(), z, cat64, tv, config, jax.random.key(1))
    loss = r.history["loss"]
    print(f"feature inversion, TV prior: loss {loss[0]:.2f} -> {loss[-1]:.2f}")
    assert loss[-1] < 0.8 * loss[0]  # measured: 74.1 -> 11.7
    seeds_config = fit.FitConfig(num_iter=6, lr=0.01, reg_noise_std=0.03, early_stopping="emv", es_window=2,
                                 es_patience=2)
    runs = ensemble.fit_seeds(cat64, op, tiny_skip(), seeds_config, jax.random.split(jax.random.key(2), 2),
                              input_config=InputConfig("noise", 4))
    chex.assert_shape(runs.finals, (2, 64, 64, 3))
    assert np.all(np.isfinite(runs.history["loss"]))


def test_scores_are_the_relative_distance_mse_and_psnr_of_the_window(efficientnet, cat64):
    op = operators.FeatureInversion(efficientnet, LAYER, image_size=(64, 64), output_size=(72, 72))
    x = jax.random.uniform(jax.random.key(3), (72, 72, 3))
    s = jax.jit(lambda o, x, y: o.scores(x, y))(op, x, cat64)
    phi, target = efficientnet.activations(x[:64, :64], LAYER), efficientnet.activations(cat64, LAYER)
    squared = float(jnp.sum(jnp.square(phi - target)))
    np.testing.assert_allclose(float(s["feature_distance"]), squared / float(jnp.sum(jnp.square(target))), rtol=1e-5)
    np.testing.assert_allclose(float(s["feature_mse"]), float(_data_term(op, x, cat64)), rtol=1e-5)
    want_psnr = -10 * np.log10(np.mean((np.asarray(x[:64, :64]) - np.asarray(cat64)) ** 2))
    np.testing.assert_allclose(float(s["psnr_original"]), want_psnr, rtol=1e-5)
    assert float(op.scores(jnp.pad(cat64, ((0, 8), (0, 8), (0, 0))), cat64)["feature_distance"]) == 0.0
    assert operators.Regularized(op, 1.0).scores(x, cat64).keys() == s.keys()
