"""ES-WMV / ES-EMV (dip_jax/stopping.py) against an independent numpy reading of the rules."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import numpy_rule, smooth_image, tiny_skip

from dip_jax import fit, inputs, metrics, operators, stopping

# A U-shaped variance curve: outputs scatter around a fixed image with an amplitude that
# falls to its smallest at step U_BOTTOM, then grows again (as a fit that starts on the noise).
NUM_STEPS, U_BOTTOM, WINDOW, PATIENCE = 320, 120, 10, 40


def u_shaped_outputs(seed=0, shape=(4, 4, 3)):
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_STEPS)
    amplitude = 0.02 + 0.3 * ((t - U_BOTTOM) / U_BOTTOM) ** 2
    noise = rng.standard_normal((NUM_STEPS, *shape))
    return (0.5 + amplitude[:, None, None, None] * noise).astype(np.float32)


def numpy_wmv_variances(outputs, window):
    out = np.full(len(outputs), np.nan)
    x = outputs.astype(np.float64)
    for t in range(window - 1, len(x)):
        w = x[t - window + 1 : t + 1]
        out[t] = np.mean((w - w.mean(0)) ** 2)
    return out


def numpy_emv_variances(outputs, decay, warmup):
    a = 1 - decay
    out = np.full(len(outputs), np.nan)
    x = outputs.astype(np.float64)
    mean, var = x[0], 0.0
    for t in range(1, len(x)):
        delta = x[t] - mean
        mean = mean + a * delta
        var = (1 - a) * (var + a * np.mean(delta**2))
        if t + 1 >= warmup:
            out[t] = var
    if warmup <= 1:
        out[0] = 0.0
    return out


def run_rule(rule, outputs):
    """The rule over a sequence inside one jitted scan: final state, per-step variance and stop flag."""

    @jax.jit
    def go(xs):
        def body(state, x_and_step):
            x, step = x_and_step
            state, variance = rule.update(state, x, step)
            return state, (variance, state.stopped)

        return jax.lax.scan(body, rule.init(xs.shape[1:], xs.dtype), (xs, jnp.arange(len(xs))))

    state, (variances, stopped) = go(jnp.asarray(outputs))
    return state, np.asarray(variances), np.asarray(stopped)


@pytest.mark.parametrize("name", ["wmv", "emv"])
def test_rules_detect_the_bottom_of_a_u_shaped_curve(name):
    outputs = u_shaped_outputs()
    if name == "wmv":
        rule, expected = stopping.wmv(WINDOW, PATIENCE), numpy_wmv_variances(outputs, WINDOW)
    else:
        rule, expected = stopping.emv(0.9, PATIENCE, warmup=WINDOW), numpy_emv_variances(outputs, 0.9, WINDOW)
    state, variances, stopped = run_rule(rule, outputs)

    np.testing.assert_array_equal(np.isnan(variances), np.isnan(expected))
    np.testing.assert_allclose(variances, expected, rtol=1e-4)
    detected, stop_at = numpy_rule(expected, PATIENCE)
    assert stop_at is not None and stop_at == detected + PATIENCE
    assert int(state.iteration) == detected
    # the flag rises exactly at the step where the patience runs out, and stays up
    np.testing.assert_array_equal(stopped, np.arange(1, NUM_STEPS + 1) >= stop_at)
    chex.assert_trees_all_equal(state.output, jnp.asarray(outputs[detected - 1]))
    # ... and the detection is the bottom of the U: the window centre (WMV) or close behind it (EMV)
    assert abs(detected - (U_BOTTOM + WINDOW // 2)) <= 15, detected


def test_the_detection_is_final_once_stopped():
    """A later, deeper valley (after the patience ran out) does not move the detection."""
    outputs = u_shaped_outputs()
    later = outputs[U_BOTTOM - 40 : U_BOTTOM + 40]
    later = 0.5 + 0.1 * (later - 0.5)  # quieter than anything before
    sequence = np.concatenate([outputs, later])
    rule = stopping.wmv(WINDOW, PATIENCE)
    state, variances, _ = run_rule(rule, sequence)
    detected, stop_at = numpy_rule(variances, PATIENCE)
    assert stop_at is not None and stop_at <= NUM_STEPS
    assert np.nanargmin(variances) + 1 > NUM_STEPS  # the global minimum comes later...
    assert int(state.iteration) == detected <= NUM_STEPS  # ...but the rule had already decided


def test_rules_vmap_over_seeds():
    a, b = u_shaped_outputs(0), u_shaped_outputs(1)[::-1].copy()  # b: another curve, its bottom elsewhere
    rule = stopping.wmv(WINDOW, PATIENCE)

    def run(xs):
        def body(state, x_and_step):
            state, v = rule.update(state, *x_and_step)
            return state, v

        return jax.lax.scan(body, rule.init(xs.shape[1:]), (xs, jnp.arange(len(xs))))[0]

    both = jax.jit(jax.vmap(run))(jnp.stack([a, b]))
    for i, xs in enumerate((a, b)):
        alone = run_rule(rule, xs)[0]
        chex.assert_trees_all_equal(jax.tree_util.tree_map(lambda x, i=i: x[i], both), alone)
    assert int(both.iteration[0]) != int(both.iteration[1])


def test_bad_rule_settings():
    with pytest.raises(ValueError, match="early_stopping must be one of"):
        fit.FitConfig(early_stopping="median")
    with pytest.raises(ValueError, match="window >= 2"):
        fit.FitConfig(early_stopping="wmv", es_window=1)
    with pytest.raises(ValueError, match="decay"):
        fit.FitConfig(early_stopping="emv", es_emv_decay=1.0)
    with pytest.raises(ValueError, match="stop_at_detection needs"):
        fit.FitConfig(stop_at_detection=True)


# A short real fit of a tiny net to a noisy 32x32 image.
SIZE = 32


@pytest.fixture(scope="module")
def noisy_fit():
    net = tiny_skip()
    z = inputs.noise(jax.random.key(1), SIZE, SIZE, 4)
    op = operators.Denoising(25.0)
    clean = smooth_image(SIZE)
    noisy = op.simulate(clean, jax.random.key(0))
    return net, z, op, clean, noisy


def test_detection_on_a_real_fit_is_where_the_rule_says(noisy_fit):
    net, z, op, clean, noisy = noisy_fit
    config = fit.FitConfig(num_iter=30, early_stopping="wmv", es_window=4, es_patience=8)
    result = fit.fit(net, z, noisy, op, config, jax.random.key(2), clean=clean)

    # the outputs of every step, recomputed from the same compiled step, one state at a time
    step = fit.compiled_steps(fit.Problem(net), fit.step_config(config), "cpu")[0]
    render = jax.jit(fit.Problem(net).render)
    state = fit.init_state(net, z, config, jax.random.key(2))
    outputs = []
    for t in range(config.num_iter):
        outputs.append(np.asarray(render(state.params, fit.perturbed_code(z, config, state.key, t))))
        state, _ = step(state, z, noisy, op, clean)
    chex.assert_trees_all_equal(state.stopping, result.stop)

    variances = result.history["es_variance"]
    np.testing.assert_allclose(variances, numpy_wmv_variances(np.stack(outputs), 4), rtol=1e-4, atol=1e-9)
    detected, stop_at = numpy_rule(variances, 8)
    assert int(result.stop.iteration) == detected >= 4
    assert bool(result.stop.stopped) == (stop_at is not None)
    np.testing.assert_allclose(result.stop.output, outputs[detected - 1], atol=1e-6)
    np.testing.assert_allclose(
        float(metrics.psnr(result.stop.output, clean)), result.history["psnr_clean"][detected - 1], rtol=1e-5
    )
    # the fit's 0.99 average is kept at the same step, beside the raw output
    np.testing.assert_allclose(
        float(metrics.psnr(result.stop.average, clean)), result.history["psnr_ema_clean"][detected - 1], rtol=1e-5
    )
    assert not np.allclose(result.stop.average, result.stop.output)


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_fit_can_end_at_the_stop(noisy_fit, steps_per_call):
    net, z, op, clean, noisy = noisy_fit
    run_on = fit.FitConfig(num_iter=40, early_stopping="emv", es_window=3, es_patience=5, steps_per_call=steps_per_call)
    full = fit.fit(net, z, noisy, op, run_on, jax.random.key(2), clean=clean)
    detected, stop_at = numpy_rule(full.history["es_variance"], 5)
    assert stop_at is not None and stop_at < 40, "the test needs a stop inside the run"

    stopped = fit.fit(net, z, noisy, op, dataclasses.replace(run_on, stop_at_detection=True), jax.random.key(2),
                      clean=clean)
    assert int(stopped.state.step) == stop_at
    assert len(stopped.history["loss"]) == stop_at
    assert int(stopped.stop.iteration) == int(full.stop.iteration) == detected
    np.testing.assert_allclose(stopped.history["loss"], full.history["loss"][:stop_at], rtol=1e-5)
    chex.assert_trees_all_close(stopped.stop.output, full.stop.output, atol=1e-5)


def test_replaying_the_history_gives_the_fits_decisions_for_any_patience(noisy_fit):
    """stopping.replay: the fit's own detection for its patience; a smaller one stops sooner, never later."""
    net, z, op, clean, noisy = noisy_fit
    config = fit.FitConfig(num_iter=40, early_stopping="wmv", es_window=3, es_patience=12)
    result = fit.fit(net, z, noisy, op, config, jax.random.key(2), clean=clean)
    variances = result.history["es_variance"]
    detected, stop_at = stopping.replay(variances, 12)
    assert detected == int(result.stop.iteration) and (stop_at is not None) == bool(result.stop.stopped)
    for patience in (1, 3, 6, 12, 40):
        assert stopping.replay(variances, patience) == numpy_rule(variances, patience)
    shorter, longer = stopping.replay(variances, 3), stopping.replay(variances, 12)
    assert shorter[1] is not None and (longer[1] is None or shorter[1] <= longer[1])
