"""Checkpoints (dip_jax/checkpoint.py): bitwise resumption, refusals, and the CLI's --resume."""

import dataclasses
import hashlib
import json
import os

import chex
import jax
import numpy as np
import pytest
from conftest import numpy_rule, smooth_image, tiny_config, tiny_skip

from dip_jax import checkpoint, fit, inputs, operators

SIZE = 32
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def problem():
    net = tiny_skip()
    z = inputs.noise(jax.random.key(1), SIZE, SIZE, 4)
    op = operators.Denoising(25.0)
    clean = smooth_image(SIZE)
    return net, z, op, clean, op.simulate(clean, jax.random.key(0))


# Backtracking, the EMA and a stopping rule all carry state across steps.
CONFIG = fit.FitConfig(num_iter=8, backtrack=True, early_stopping="wmv", es_window=3, es_patience=2)


class Interrupted(Exception):
    pass


def comparable(state):
    """A state with its typed key as raw data, for bitwise comparison."""
    return state.replace(key=jax.random.key_data(state.key))


def files_of(directory):
    """Every file under `directory` with the hash of its bytes."""
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def interrupted(problem, tmp_path_factory):
    """A fit that saves every 3 steps and is killed right after its save at step 3."""
    net, z, op, clean, noisy = problem
    directory = str(tmp_path_factory.mktemp("ckpt") / "checkpoints")
    meta = checkpoint.metadata(CONFIG, noisy.shape, z.shape)

    def save_then_die(state, history):
        checkpoint.save(directory, state, meta, history)
        if int(state.step) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        fit.fit(net, z, noisy, op, CONFIG, jax.random.key(2), clean=clean, checkpoint_every=3,
                checkpoint_fn=save_then_die)
    return directory, meta


def test_a_resumed_fit_is_bitwise_one_that_never_stopped(problem, interrupted):
    net, z, op, clean, noisy = problem
    directory, meta = interrupted
    whole = fit.fit(net, z, noisy, op, CONFIG, jax.random.key(2), clean=clean)
    again = fit.fit(net, z, noisy, op, CONFIG, jax.random.key(2), clean=clean)
    chex.assert_trees_all_equal(comparable(again.state), comparable(whole.state))  # same key, same bits

    template = fit.init_state(net, z, CONFIG, jax.random.key(2))
    state, history = checkpoint.restore(directory, template, meta)
    assert int(state.step) == 3 and history["loss"].shape == (3,)
    assert jax.random.key_impl(state.key) == jax.random.key_impl(template.key)
    rest = fit.fit(net, z, noisy, op, CONFIG, jax.random.key(2), clean=clean, state=state)

    chex.assert_trees_all_equal(comparable(rest.state), comparable(whole.state))
    chex.assert_trees_all_equal(rest.final, whole.final)
    chex.assert_trees_all_equal(rest.stop, whole.stop)
    for name, values in whole.history.items():
        np.testing.assert_array_equal(np.concatenate([history[name], rest.history[name]]), values, err_msg=name)


def test_bad_checkpoint_directories_are_refused_and_left_alone(problem, interrupted, tmp_path):
    net, z, op, clean, noisy = problem
    directory, meta = interrupted
    template = fit.init_state(net, z, CONFIG, jax.random.key(2))
    before = files_of(directory)

    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.restore(str(tmp_path / "missing"), template, meta)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint to resume"):
        checkpoint.restore(str(tmp_path / "empty"), template, meta)
    assert os.listdir(tmp_path / "empty") == []

    other_config = checkpoint.metadata(dataclasses.replace(CONFIG, lr=0.02), noisy.shape, z.shape)
    with pytest.raises(checkpoint.CheckpointError, match=r"from another run: fit_config\.lr: 0\.01 in the checkpoint"):
        checkpoint.restore(directory, template, other_config)
    other_shape = checkpoint.metadata(CONFIG, (48, 48, 3), z.shape)
    with pytest.raises(checkpoint.CheckpointError, match=r"observation_shape: \[32, 32, 3\] in the checkpoint, "):
        checkpoint.restore(directory, template, other_shape)
    # a longer run of the same settings is a resumption, not another run
    checkpoint.check(directory, checkpoint.metadata(dataclasses.replace(CONFIG, num_iter=99), noisy.shape, z.shape))
    assert files_of(directory) == before


def es_config(**fields):
    """The tiny restore config with early stopping on a short window."""
    return tiny_config(**{"fit.early_stopping": "wmv", "fit.es_window": 4, "fit.es_patience": 6, "seed": 3,
                          **fields})


def run(out, num_iter, seeds=1, **options):
    from experiments import restore_lib

    return restore_lib.run(es_config(seeds=seeds, **{"fit.num_iter": num_iter}), str(out), **options)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """One 12-step run, and one stopped at 7 (checkpoints at 5 and 7) then resumed to 12."""
    base = tmp_path_factory.mktemp("cli")
    run(base / "whole", 12)
    run(base / "resumed", 7, checkpoint_every=5)
    assert sorted(os.listdir(base / "resumed" / "checkpoints")) == ["5", "7"]
    run(base / "resumed", 12, checkpoint_every=5, resume=True)
    return base


def test_resume_gives_the_run_that_never_stopped(cli_runs):
    base = cli_runs
    whole, resumed = np.load(base / "whole" / "history.npz"), np.load(base / "resumed" / "history.npz")
    assert sorted(whole) == sorted(resumed)
    for name in whole:
        np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)
    m_whole = json.loads((base / "whole" / "metrics.json").read_text())
    m_resumed = json.loads((base / "resumed" / "metrics.json").read_text())
    assert m_resumed.pop("resumed_from_step") == 7
    timing = {"seconds", "seconds_per_iter", "compile_seconds"}
    assert {k: v for k, v in m_resumed.items() if k not in timing} == {
        k: v for k, v in m_whole.items() if k not in timing
    }
    assert (base / "resumed" / "final.png").read_bytes() == (base / "whole" / "final.png").read_bytes()


def test_run_records_the_detection_and_the_oracle(cli_runs):
    base = cli_runs
    m = json.loads((base / "whole" / "metrics.json").read_text())
    h = np.load(base / "whole" / "history.npz")
    detected, stop_at = numpy_rule(h["es_variance"], 6)
    assert m["es_iteration"] == detected >= 4 and m["es_stopped"] == (stop_at is not None)
    assert m["oracle_iteration"] == int(np.argmax(h["psnr_clean"])) + 1
    assert m["oracle_psnr"] == pytest.approx(float(np.max(h["psnr_clean"])))
    assert m["es_gap_db"] == pytest.approx(float(np.max(h["psnr_clean"]) - h["psnr_clean"][detected - 1]))
    assert m["es_gap_db"] >= 0 and (base / "whole" / "es.png").is_file()
    assert m["psnr_ema_es"] == pytest.approx(float(h["psnr_ema_clean"][detected - 1]))
    assert (base / "whole" / "es_ema.png").is_file()
    cfg = json.loads((base / "whole" / "config.json").read_text())
    env = json.loads((base / "whole" / "environment.json").read_text())
    assert cfg["fit"]["early_stopping"] == "wmv" and cfg["seed"] == 3
    assert {"jax", "flax", "optax", "orbax_checkpoint", "git_revision", "xla_flags"} <= set(env)


def test_a_bad_resume_writes_nothing(cli_runs):
    from experiments import restore_lib

    base = cli_runs
    missing = base / "never_ran"
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint to resume"):
        run(missing, 12, resume=True)
    assert not missing.exists()

    before = files_of(base / "resumed")
    with pytest.raises(checkpoint.CheckpointError, match="from another run.*lr: 0.01 in the checkpoint, 0.02 here"):
        restore_lib.run(es_config(**{"fit.num_iter": 12, "fit.lr": 0.02}), str(base / "resumed"), resume=True)
    with pytest.raises(checkpoint.CheckpointError, match="from another run.*observation_shape"):
        restore_lib.run(es_config(**{"fit.num_iter": 12, "default_image_size": 48}), str(base / "resumed"),
                        resume=True)
    assert files_of(base / "resumed") == before


def test_a_resumed_fit_of_several_seeds_is_the_one_that_never_stopped(tmp_path):
    """Checkpoints hold every seed's state: K seeds stopped and resumed equal K seeds run through."""
    whole = run(tmp_path / "whole", 6, seeds=2)
    run(tmp_path / "resumed", 3, checkpoint_every=3, seeds=2)
    resumed = run(tmp_path / "resumed", 6, checkpoint_every=3, resume=True, seeds=2)
    assert resumed.pop("resumed_from_step") == 3
    timing = {"seconds", "seconds_per_iter", "compile_seconds"}
    assert {k: v for k, v in resumed.items() if k not in timing} == {k: v for k, v in whole.items() if k not in timing}
    for name in ("seed0_final.png", "seed1_final.png", "uncertainty.npy"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_a_resumed_flash_no_flash_fit_is_the_one_that_never_stopped(tmp_path):
    """The flash photo is the code: a resumed run must rebuild it exactly (in-process, library entry)."""
    import imageio.v3 as iio
    import ml_collections

    from experiments import restore_lib

    rng = np.random.default_rng(0)
    no_flash = rng.integers(0, 200, (SIZE, SIZE, 3)).astype(np.uint8)
    iio.imwrite(tmp_path / "no_flash.png", no_flash)
    iio.imwrite(tmp_path / "flash.png", (no_flash + 40).astype(np.uint8))
    config = tiny_config(**{"fit.early_stopping": "wmv", "fit.es_window": 4, "fit.es_patience": 6})
    config.task = "flash"
    config.observation, config.flash = str(tmp_path / "no_flash.png"), str(tmp_path / "flash.png")
    assert isinstance(config, ml_collections.ConfigDict)

    def run(out, num_iter, **kw):
        c = config.copy_and_resolve_references()
        c.fit.num_iter = num_iter
        return restore_lib.run(c, str(tmp_path / out), **kw)

    whole = run("whole", 6)
    run("resumed", 4, checkpoint_every=2)
    resumed = run("resumed", 6, checkpoint_every=2, resume=True)
    assert resumed.pop("resumed_from_step") == 4
    timing = {"seconds", "seconds_per_iter", "compile_seconds"}
    assert {k: v for k, v in resumed.items() if k not in timing} == {k: v for k, v in whole.items() if k not in timing}
    for name in ("final.png", "ema.png", "flash.png"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
