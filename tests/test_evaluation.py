"""dip_jax.evaluation: every number of `evaluate` against a direct numpy computation."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Brightness

from dip_jax import ensemble, fit, metrics, operators, stopping
from dip_jax.evaluation import evaluate, finite_or_none


def np_psnr(x, y):
    return -10 * np.log10(np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))


def fake_result(k=2, size=16, steps=5, with_stop=False, seed=0):
    """A SeedsResult of k 'seeds' made from random images and a made-up history."""
    rng = np.random.default_rng(seed)
    finals = jnp.asarray(rng.random((k, size, size, 3)), jnp.float32)
    emas = jnp.asarray(rng.random((k, size, size, 3)), jnp.float32)
    history = {"loss": rng.random((k, steps)).astype(np.float32),
               "psnr_obs": rng.random((k, steps)).astype(np.float32),
               "backtracked": np.zeros((k, steps), bool),
               "psnr_clean": (20 + rng.random((k, steps))).astype(np.float32),
               "psnr_ema_clean": (21 + rng.random((k, steps))).astype(np.float32)}
    history["backtracked"][0, 1] = True
    stop = None
    if with_stop:
        rule = stopping.get("wmv", window=2, patience=2)
        one = rule.init((size, size, 3), jnp.float32).replace(iteration=jnp.asarray(3), stopped=jnp.asarray(True))
        stop = jax.tree_util.tree_map(lambda x: jnp.stack([x] * k), one)
    state = fit.FitState(params={}, opt_state=(), ema=emas, saved_params={}, last_psnr=jnp.zeros(k),
                         counter=jnp.zeros(k, jnp.int32), step=jnp.full(k, steps), key=None, stopping=stop)
    return ensemble.SeedsResult(finals=finals, emas=emas, mean=emas.mean(0), std=emas.std(0), history=history,
                                state=state)


def test_denoising_scores_against_numpy():
    rng = np.random.default_rng(1)
    clean = jnp.asarray(rng.random((16, 16, 3)), jnp.float32)
    observation = jnp.clip(clean + 0.1 * jnp.asarray(rng.standard_normal((16, 16, 3)), jnp.float32), 0, 1)
    result = fake_result()
    m = evaluate(observation, clean, result, operators.Denoising(25.0))
    assert m["steps_run"] == 5 and m["backtracks"] == 1
    assert m["final_loss"] == pytest.approx(float(np.mean(result.history["loss"][:, -1])))
    assert m["psnr_obs_final"] == pytest.approx(np_psnr(result.finals[0], observation), abs=1e-4)
    assert m["psnr_input"] == pytest.approx(np_psnr(observation, clean), abs=1e-4)
    assert m["psnr_final"] == pytest.approx(np_psnr(result.finals[0], clean), abs=1e-4)
    assert m["psnr_ema"] == pytest.approx(np_psnr(result.emas[0], clean), abs=1e-4)
    assert m["ssim_ema"] == pytest.approx(float(metrics.ssim(result.emas[0], clean)), abs=1e-6)
    curve = result.history["psnr_ema_clean"][0]
    assert (m["psnr_ema_best"], m["psnr_ema_best_iteration"]) == (pytest.approx(float(curve.max())),
                                                                  int(curve.argmax()) + 1)
    seeds = [np_psnr(e, clean) for e in result.emas]
    np.testing.assert_allclose(m["psnr_seeds"], seeds, atol=1e-4)
    assert m["psnr_seeds_mean"] == pytest.approx(np.mean(seeds), abs=1e-4)
    assert m["psnr_seeds_std"] == pytest.approx(np.std(seeds), abs=1e-4)
    assert m["psnr_mean_image"] == pytest.approx(np_psnr(np.mean(result.emas, 0), clean), abs=1e-4)
    assert m["uncertainty_max"] == pytest.approx(float(np.max(np.std(result.emas, 0))), abs=1e-6)
    assert "psnr_y_final" not in m and "es_iteration" not in m


def test_super_resolution_scores_the_paper_protocol():
    rng = np.random.default_rng(2)
    clean = jnp.asarray(rng.random((16, 16, 3)), jnp.float32)
    op = operators.SuperResolution(2)
    observation = op.forward(clean)
    result = fake_result(k=1)
    m = evaluate(observation, clean, result, op)
    baseline = op.baseline(observation)
    assert "psnr_input" not in m and "psnr_seeds" not in m  # the LR input has another size; one seed
    assert m["psnr_baseline"] == pytest.approx(np_psnr(baseline, clean), abs=1e-4)
    y = lambda im: (219 * (np.asarray(im)[..., :3] @ np.array([0.299, 0.587, 0.114])) + 16) / 255  # noqa: E731
    shaved = (slice(4, 16 - 5), slice(4, 16 - 5))
    assert m["psnr_y_final"] == pytest.approx(np_psnr(y(result.finals[0])[shaved], y(clean)[shaved]), abs=1e-4)
    assert m["psnr_y_baseline"] == pytest.approx(np_psnr(y(baseline)[shaved], y(clean)[shaved]), abs=1e-4)
    # a regulariser on top changes nothing about how the result is scored
    assert evaluate(observation, clean, result, operators.Regularized(op, 1e-3)) == m


def test_early_stopping_numbers_come_from_seed_zero_and_the_history():
    rng = np.random.default_rng(3)
    clean = jnp.asarray(rng.random((16, 16, 3)), jnp.float32)
    result = fake_result(with_stop=True)
    m = evaluate(clean, clean, result, operators.Denoising(25.0))
    curve = result.history["psnr_clean"][0]
    assert (m["es_iteration"], m["es_stopped"]) == (3, True)
    assert m["oracle_iteration"] == int(np.argmax(curve)) + 1
    assert m["psnr_es"] == pytest.approx(float(curve[2]))
    assert m["es_gap_db"] == pytest.approx(float(curve.max() - curve[2]))
    assert m["psnr_ema_es"] == pytest.approx(float(result.history["psnr_ema_clean"][0][2]))


def test_without_a_clean_image_only_what_can_be_measured():
    result = fake_result(k=1)
    observation = jnp.full((16, 16, 3), 0.5)
    m = evaluate(observation, None, result, operators.Denoising(25.0))
    assert set(m) == {"steps_run", "backtracks", "final_loss", "psnr_obs_final"}


def test_values_that_are_not_finite_are_json_null():
    result = fake_result(k=1)
    result = result.replace(finals=result.finals.at[0, 0, 0, 0].set(jnp.nan))
    m = evaluate(jnp.full((16, 16, 3), 0.5), None, result, operators.Denoising(25.0))
    assert m["psnr_obs_final"] is None
    json.dumps(m, allow_nan=False)  # standard JSON
    assert finite_or_none({"a": [1.0, float("inf")], "b": np.float32(2.5), "c": np.bool_(True), "d": "x"}) == {
        "a": [1.0, None], "b": 2.5, "c": True, "d": "x"}


def test_operator_scores_of_the_saved_images_and_no_psnr_without_an_observation():
    result = fake_result(k=1)
    m = evaluate(jnp.zeros((16, 16, 3)), None, result, Brightness())
    assert "psnr_obs_final" not in m
    saved = np.round(np.clip(np.asarray(result.finals[0]), 0, 1) * 255) / 255  # as final.png holds it
    np.testing.assert_allclose(m["mean_final"], saved.mean(), rtol=1e-6)
    assert m["argmax_final"] == int(np.argmax(saved)) and isinstance(m["argmax_final"], int)
    np.testing.assert_allclose(m["mean_ema"], (np.round(np.asarray(result.emas[0]) * 255) / 255).mean(), rtol=1e-6)
    # no average (emas are the finals): scored once; Regularized reports its base's scores
    same = result.replace(emas=result.finals)
    tv = evaluate(jnp.zeros((16, 16, 3)), None, same, operators.Regularized(Brightness(), 1.0))
    assert "mean_final" in tv and "mean_ema" not in tv and "psnr_obs_final" not in tv
