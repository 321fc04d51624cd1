"""ActivationMaximization: the original's two losses against direct computations, and short fits.

The classifier is the real EfficientNet-Lite0 on 64x64 images (any size works: it pools
globally); at that size `blocks.8` is a 4x4 map of 112 channels.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_skip

from dip_jax import fit, models, operators
from dip_jax.operators.activation_maximization import central_window

CONV = "blocks.8"


@jax.jit
def _data_term(op, x):
    return op.data_term(x, op.canvas())


def test_central_window_is_the_notebooks_clipped_to_the_map():
    assert central_window(13, 20) == (0, 13)  # AlexNet's conv4: the whole map
    assert central_window(56, 20) == (8, 48)
    assert central_window(4, 1) == (1, 3)  # a 2x2 centre: window 1 is "neuron maximisation" at odd sizes
    assert central_window(14, 20) == (0, 14)  # the original's negative start would count from the end (row 1)


def test_conv_loss_is_minus_the_channels_window_sum(efficientnet):
    x = jax.random.uniform(jax.random.key(0), (80, 80, 3))
    a = efficientnet.activations(x[:64, :64], CONV)
    chex.assert_shape(a, (4, 4, 112))
    whole = operators.ActivationMaximization(efficientnet, CONV, 7, image_size=(64, 64), output_size=(80, 80))
    np.testing.assert_allclose(float(_data_term(whole, x)), -5.0 * float(jnp.sum(a[:, :, 7])), rtol=1e-5)
    centre = operators.ActivationMaximization(efficientnet, CONV, 7, window=1, weight=2.0, image_size=(64, 64),
                                              output_size=(80, 80))
    np.testing.assert_allclose(float(_data_term(centre, x)), -2.0 * float(jnp.sum(a[1:3, 1:3, 7])), rtol=1e-5)
    np.testing.assert_allclose(float(centre.value(x)), float(jnp.sum(a[1:3, 1:3, 7])), rtol=1e-5)


def test_fc_loss_drives_a_logit_to_the_target(efficientnet):
    x = jax.random.uniform(jax.random.key(1), (64, 64, 3))
    logits = efficientnet.logits(x)
    swan = operators.ActivationMaximization.for_class(efficientnet, "black swan", image_size=(64, 64))
    assert (swan.layer, swan.unit, swan.target) == ("fc", 100, 300.0)
    np.testing.assert_allclose(float(_data_term(swan, x)), 5.0 * abs(300.0 - float(logits[100])), rtol=1e-5)
    maximise = operators.ActivationMaximization.for_class(efficientnet, 933, target=None, image_size=(64, 64))
    np.testing.assert_allclose(float(_data_term(maximise, x)), -5.0 * float(logits[933]), rtol=1e-5)


def test_canvas_geometry_and_validation(efficientnet):
    op = operators.ActivationMaximization(efficientnet, CONV, 0, output_size=(256, 256))
    chex.assert_shape(op.canvas(), (224, 224, 3))
    chex.assert_shape(op.simulate(None, jax.random.key(0)), (224, 224, 3))
    assert op.output_shape((224, 224, 3)) == (256, 256, 3)
    with pytest.raises(ValueError, match="has 112 units; got unit 112"):
        _data_term(operators.ActivationMaximization(efficientnet, CONV, 112, image_size=(64, 64)),
                   jnp.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match="half-width"):
        operators.ActivationMaximization(efficientnet, CONV, 0, window=0)
    with pytest.raises(ValueError, match="no layer 'conv4'"):
        operators.ActivationMaximization(efficientnet, "conv4", 0)
    with pytest.raises(ValueError, match="no ImageNet class"):
        operators.ActivationMaximization.for_class(efficientnet, "unicorn")


def test_deep_prior_fit_raises_the_class_logit(efficientnet):
    op = operators.ActivationMaximization.for_class(efficientnet, "goose", image_size=(64, 64),
                                                    output_size=(72, 72))
    net = tiny_skip()
    z = 0.1 * jax.random.uniform(jax.random.key(0), (1, 72, 72, 4))
    config = fit.FitConfig(num_iter=40, lr=0.01, reg_noise_std=0.03, ema_decay=None)
    before = float(op.value(net.apply(net.init(jax.random.split(jax.random.key(1))[0], z), z)[0]))
    r = fit.fit(net, z, op.canvas(), op, config, jax.random.key(1))
    loss = r.history["loss"]
    after = float(op.value(r.final))
    print(f"activation maximisation, goose logit: {before:.2f} -> {after:.2f}, loss {loss[0]:.1f} -> {loss[-1]:.1f}")
    assert loss[-1] < loss[0] - 25  # measured: 1497.8 -> 1450.3, the logit 2.35 -> 10.88
    assert after > before + 5


def test_tv_prior_baseline_on_a_channel(efficientnet):
    """The notebook's TV baseline: pixels from 0.5 + U(0, 0.1), TV with beta 2, a conv channel."""
    op = operators.ActivationMaximization(efficientnet, CONV, 3, image_size=(64, 64))
    tv = operators.Regularized(op, tv_weight=1e-6 * 255.0**4, tv_beta=2.0)
    z = 0.5 + 0.1 * jax.random.uniform(jax.random.key(0), (1, 64, 64, 3))
    config = fit.FitConfig(num_iter=30, lr=0.01, reg_noise_std=0.0, ema_decay=None)
    r = fit.fit(models.PixelImage(), z, op.canvas(), tv, config, jax.random.key(1))
    loss = r.history["loss"]
    print(f"activation maximisation, TV prior: loss {loss[0]:.1f} -> {loss[-1]:.1f}, "
          f"channel {float(op.value(z[0])):.1f} -> {float(op.value(r.final)):.1f}")
    assert loss[-1] < loss[0]
    assert float(op.value(r.final)) > float(op.value(z[0]))


def test_scores_are_the_classifiers_confidence_and_rank(efficientnet):
    x = jax.random.uniform(jax.random.key(4), (72, 72, 3))
    goose = operators.ActivationMaximization.for_class(efficientnet, "goose", image_size=(64, 64),
                                                       output_size=(72, 72))
    s = jax.jit(lambda o, x: o.scores(x, o.canvas()))(goose, x)
    p = np.asarray(efficientnet.probabilities(x[:64, :64]))
    np.testing.assert_allclose(float(s["target_probability"]), p[99], rtol=1e-5)
    assert int(s["target_rank"]) == 1 + int(np.sum(p > p[99]))
    assert int(s["top1_class"]) == int(np.argmax(p))
    np.testing.assert_allclose(float(s["top1_probability"]), p.max(), rtol=1e-5)
    np.testing.assert_allclose(float(s["unit_value"]), float(efficientnet.logits(x[:64, :64])[99]), rtol=1e-5)
    channel = operators.ActivationMaximization(efficientnet, CONV, 7, image_size=(64, 64), output_size=(72, 72))
    c = channel.scores(x, channel.canvas())
    assert "target_probability" not in c  # a channel is no class
    np.testing.assert_allclose(float(c["unit_value"]), float(channel.value(x)), rtol=1e-5)
    assert not goose.observed and operators.FeatureInversion(efficientnet, CONV).observed
