"""The fit: loss descent, EMA, backtracking semantics (REFERENCE §3.1), determinism, resumption."""

import dataclasses
import functools

import chex
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import Brightness, smooth_image, tiny_skip

from dip_jax import fit, inputs, metrics, operators

SIZE = 32


@pytest.fixture(scope="module")
def setup():
    net = tiny_skip()
    z = inputs.noise(jax.random.key(1), SIZE, SIZE, 4)
    # a smooth image, which the net fits quickly (it is slow to fit noise: the prior at work)
    clean = smooth_image(SIZE)
    return net, z, clean


def jitted_step(net, config):
    """The fit's own compiled `train_step` (cached, so tests share compilations)."""
    return fit.compiled_steps(fit.Problem(net), fit.step_config(config), "cpu")[0]


@functools.lru_cache(maxsize=None)
def render(net):
    return jax.jit(fit.Problem(net).render)


def run_steps(net, z, y, config, key, n):
    """n steps through `train_step` itself, keeping every state."""
    step = jitted_step(net, config)
    states = [fit.init_state(net, z, config, key)]
    ms = []
    for _ in range(n):
        s, m = step(jax.tree_util.tree_map(jnp.copy, states[-1]), z, y, operators.Denoising(25.0), None)
        states.append(s)
        ms.append(m)
    return states, ms


def test_train_step_lowers_the_loss(setup):
    net, z, clean = setup
    config = fit.FitConfig(num_iter=40, backtrack=True)
    r = fit.fit(net, z, clean, operators.Denoising(25.0), config, jax.random.key(0))
    loss = r.history["loss"]
    assert loss.shape == (40,)
    assert loss[-1] < 0.7 * loss[0]
    # the history's loss is the data term at the step's (pre-update) parameters
    states, _ = run_steps(net, z, clean, config, jax.random.key(0), 1)
    out = render(net)(states[0].params, fit.perturbed_code(z, config, states[0].key, 0))
    np.testing.assert_allclose(loss[0], np.mean((np.asarray(out) - np.asarray(clean)) ** 2), rtol=1e-5)


def test_ema_follows_the_original(setup):
    net, z, clean = setup
    config = fit.FitConfig(num_iter=5, backtrack=True)
    states, _ = run_steps(net, z, clean, config, jax.random.key(0), 5)
    expected = None
    for t in range(5):
        zt = fit.perturbed_code(z, config, states[t].key, t)
        out = np.asarray(render(net)(states[t].params, zt))
        # out_avg starts as the first output, then out_avg <- 0.99 out_avg + 0.01 out
        expected = out if expected is None else 0.99 * expected + 0.01 * out
    np.testing.assert_allclose(np.asarray(states[-1].ema), expected, rtol=1e-5, atol=1e-6)


def test_perturbation_is_gaussian_sigma_p_from_the_step_key(setup):
    _, z, _ = setup
    config = fit.FitConfig(reg_noise_std=0.5)
    a = fit.perturbed_code(jnp.zeros((1, 64, 64, 8)), config, jax.random.key(0), 3)
    np.testing.assert_allclose(np.std(a), 0.5, rtol=0.03)
    b = fit.perturbed_code(jnp.zeros((1, 64, 64, 8)), config, jax.random.key(0), 4)
    assert not np.array_equal(a, b)
    chex.assert_trees_all_equal(fit.perturbed_code(z, dataclasses.replace(config, reg_noise_std=0.0), None, 0), z)


def _one_step(net, z, y, config, state):
    return jitted_step(net, config)(jax.tree_util.tree_map(jnp.copy, state), z, y, operators.Denoising(25.0), None)


def _adam_from(net, z, y, config, state, base):
    """What Adam gives from `base` with the gradient taken at `state.params`."""
    def loss(p):
        return jnp.mean((fit.Problem(net).render(p, fit.perturbed_code(z, config, state.key, state.step)) - y) ** 2)

    grads = jax.jit(jax.grad(loss))(state.params)
    updates, _ = optax.adam(config.lr).update(grads, state.opt_state, base)
    return optax.apply_updates(base, updates)


@pytest.fixture(scope="module")
def backtrack_case(setup):
    net, z, clean = setup
    config = fit.FitConfig(num_iter=10, backtrack=True)
    state = fit.init_state(net, z, config, jax.random.key(0))
    saved = jax.tree_util.tree_map(lambda p: p + 0.01, state.params)
    return net, z, clean, config, state.replace(saved_params=saved)


def test_backtracking_restores_saved_params_then_steps_with_the_bad_gradient(backtrack_case):
    net, z, y, config, state = backtrack_case
    state = state.replace(counter=jnp.int32(7), last_psnr=jnp.float32(500.0))  # any PSNR is a > 5 dB drop
    new, m = _one_step(net, z, y, config, state)
    assert bool(m["backtracked"])
    want = _adam_from(net, z, y, config, state, state.saved_params)
    chex.assert_trees_all_close(new.params, want, rtol=1e-5, atol=1e-5)
    assert int(new.counter) == 7  # not advanced
    chex.assert_trees_all_equal(new.saved_params, state.saved_params)
    assert float(new.last_psnr) == 500.0
    assert int(new.step) == 1  # the optimiser step still counts


def test_backtracking_skips_multiples_of_show_every(backtrack_case):
    net, z, y, config, state = backtrack_case
    state = state.replace(counter=jnp.int32(100), last_psnr=jnp.float32(500.0))
    new, m = _one_step(net, z, y, config, state)
    assert not bool(m["backtracked"])
    chex.assert_trees_all_close(new.params, _adam_from(net, z, y, config, state, state.params), rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_equal(new.saved_params, state.saved_params)  # neither checks nor saves
    assert int(new.counter) == 101 and float(new.last_psnr) == 500.0


def test_backtracking_saves_when_the_check_passes(backtrack_case):
    net, z, y, config, state = backtrack_case
    state = state.replace(counter=jnp.int32(3), last_psnr=jnp.float32(0.0))
    new, m = _one_step(net, z, y, config, state)
    assert not bool(m["backtracked"])
    chex.assert_trees_all_equal(new.saved_params, state.params)
    np.testing.assert_allclose(float(new.last_psnr), float(m["psnr_obs"]))
    out = render(net)(state.params, fit.perturbed_code(z, config, state.key, state.step))
    np.testing.assert_allclose(float(m["psnr_obs"]), float(metrics.psnr(out, y)), rtol=1e-5)
    assert int(new.counter) == 4


def test_restoration_rule_checks_every_50_only(backtrack_case):
    net, z, y, config, state = backtrack_case
    config = dataclasses.replace(config, backtrack_check_every=50, backtrack_skip_every=0)
    for counter, checked in [(49, False), (50, True), (100, True)]:
        s = state.replace(counter=jnp.int32(counter), last_psnr=jnp.float32(500.0))
        _, m = _one_step(net, z, y, config, s)
        assert bool(m["backtracked"]) == checked


def test_fit_is_deterministic_under_a_key(setup):
    net, z, clean = setup
    config = fit.FitConfig(num_iter=6, backtrack=True)
    run = lambda k: fit.fit(net, z, clean, operators.Denoising(25.0), config, jax.random.key(k), clean=clean)
    a, b, c = run(0), run(0), run(1)
    chex.assert_trees_all_equal(a.final, b.final)
    chex.assert_trees_all_equal(a.history, b.history)
    assert not np.array_equal(a.final, c.final)


def test_resuming_from_a_state_equals_one_run(setup):
    net, z, clean = setup
    config = fit.FitConfig(num_iter=6, backtrack=True)
    op = operators.Denoising(25.0)
    whole = fit.fit(net, z, clean, op, config, jax.random.key(0))
    half = fit.fit(net, z, clean, op, dataclasses.replace(config, num_iter=3), jax.random.key(0))
    rest = fit.fit(net, z, clean, op, config, jax.random.key(0), state=half.state)
    chex.assert_trees_all_equal(rest.final, whole.final)
    chex.assert_trees_all_equal(rest.state.params, whole.state.params)
    np.testing.assert_array_equal(np.concatenate([half.history["loss"], rest.history["loss"]]), whole.history["loss"])


def test_scan_chunks_match_single_steps(setup):
    net, z, clean = setup
    op = operators.Denoising(25.0)
    config = fit.FitConfig(num_iter=7, backtrack=True)
    single = fit.fit(net, z, clean, op, dataclasses.replace(config, steps_per_call=1), jax.random.key(0))
    chunked = fit.fit(net, z, clean, op, dataclasses.replace(config, steps_per_call=3), jax.random.key(0))
    np.testing.assert_allclose(chunked.history["loss"], single.history["loss"], rtol=1e-4)
    chex.assert_trees_all_close(chunked.final, single.final, atol=1e-4)


def test_final_image_input(setup):
    net, z, clean = setup
    op = operators.Denoising(25.0)
    config = fit.FitConfig(num_iter=2, backtrack=True, final_input="clean")
    r = fit.fit(net, z, clean, op, config, jax.random.key(0))
    chex.assert_trees_all_close(r.final, render(net)(r.state.params, z), atol=1e-6)
    p = fit.fit(net, z, clean, op, dataclasses.replace(config, final_input="perturbed"), jax.random.key(0))
    z_last = fit.perturbed_code(z, config, p.state.key, 1)  # the last step's code
    chex.assert_trees_all_close(p.final, render(net)(p.state.params, z_last), atol=1e-6)


def test_callback_sees_every_step(setup):
    net, z, clean = setup
    seen = []
    fit.fit(net, z, clean, operators.Denoising(25.0), fit.FitConfig(num_iter=4, backtrack=True), jax.random.key(0),
            callback=lambda step, m: seen.append((step, float(m["loss"]))))
    assert [s for s, _ in seen] == [1, 2, 3, 4]


def test_short_fit_denoises_a_real_photo(photo64):
    """sigma = 25 on a crop of a real photo: the averaged output gains several dB."""
    net = tiny_skip(num_channels_down=(16, 16, 16), num_channels_up=(16, 16, 16), num_channels_skip=(4, 4, 4))
    op = operators.Denoising(25.0)
    clean = jnp.asarray(photo64)
    noisy = op.simulate(clean, jax.random.key(0))
    z = inputs.noise(jax.random.key(1), 64, 64, 4)
    r = fit.fit(net, z, noisy, op, fit.FitConfig(num_iter=300, backtrack=True), jax.random.key(2), clean=clean)
    before = float(metrics.psnr(noisy, clean))
    after = float(metrics.psnr(r.ema, clean))
    assert after > before + 3.0, (before, after)
    np.testing.assert_allclose(r.history["psnr_ema_clean"][-1], after, rtol=1e-5)


def test_bad_shapes_and_config_values(setup):
    net, z, clean = setup
    with pytest.raises(ValueError, match="operator expects"):
        fit.fit(net, z, clean[:16], operators.Denoising(25.0), fit.FitConfig(num_iter=1), jax.random.key(0))
    with pytest.raises(ValueError, match="num_iter"):
        fit.FitConfig(num_iter=0)
    with pytest.raises(ValueError, match="ema_decay"):
        fit.FitConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="final_input"):
        fit.FitConfig(final_input="mean")


def _matmul_precisions(jaxpr) -> set:
    """The `precision` of every convolution and matrix product in a jaxpr, nested calls included."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
            found.add(eqn.params["precision"])
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found |= _matmul_precisions(sub)
    return found


@pytest.mark.parametrize("name,precision", [("float32", jax.lax.Precision.HIGHEST),
                                            ("tensorfloat32", jax.lax.Precision.HIGH),
                                            ("default", jax.lax.Precision.DEFAULT)])
def test_precision_reaches_every_convolution(setup, name, precision):
    """config.precision sets the precision of the step's, the init's and the render's products."""
    net, z, clean = setup
    config = fit.FitConfig(precision=name)
    problem = fit.Problem(net)
    state = fit.init_state(net, z, config, jax.random.key(0), problem)
    step = functools.partial(fit.train_step, problem=problem, config=config)
    for jaxpr in (jax.make_jaxpr(step)(state, z, clean[::2, ::2], operators.SuperResolution(2), None),
                  jax.make_jaxpr(functools.partial(fit.initial_state, net, config=config, problem=problem))(
                      z, jax.random.key(0)),
                  jax.make_jaxpr(functools.partial(fit.render_final, problem=problem, config=config))(state, z)):
        assert _matmul_precisions(jaxpr.jaxpr) == {(precision, precision)}


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        fit.FitConfig(precision="fp8")


def test_an_operator_without_observation_logs_no_psnr_and_cannot_backtrack(setup):
    net, z, clean = setup
    r = fit.fit(net, z, jnp.zeros_like(clean), Brightness(), fit.FitConfig(num_iter=3), jax.random.key(0))
    assert set(r.history) == {"loss", "backtracked"}
    with pytest.raises(ValueError, match="no observation"):
        fit.fit(net, z, jnp.zeros_like(clean), Brightness(), fit.FitConfig(num_iter=3, backtrack=True),
                jax.random.key(0))
