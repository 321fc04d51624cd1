"""The restore driver (experiments/restore_lib.run) end to end, in-process, and one command-line run."""

import json
import logging
import os

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import cli, tiny_config

from experiments import progress, restore_lib


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    metrics = restore_lib.run(tiny_config(**{"fit.num_iter": 12, "seed": 3}), str(out))
    return metrics, out


def test_run_writes_every_output(finished_run):
    m, out = finished_run
    for name in ("observation.png", "final.png", "ema.png", "clean.png", "metrics.json", "config.json",
                 "environment.json", "psnr.png", "history.npz", "comparison.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    for k in ("task", "num_iter", "seconds", "seconds_per_iter", "psnr_input", "psnr_final", "psnr_ema", "ssim_ema"):
        assert k in m, k
    assert m["task"] == "denoise" and m["num_iter"] == 12
    assert 0 < m["seconds_per_iter"] < m["seconds"]
    # the recorded input PSNR is that of the saved observation (up to 8-bit rounding)
    obs = iio.imread(out / "observation.png") / 255.0
    clean = iio.imread(out / "clean.png") / 255.0
    np.testing.assert_allclose(m["psnr_input"], 10 * np.log10(1 / np.mean((obs - clean) ** 2)), atol=0.1)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fit"]["num_iter"] == 12 and cfg["seed"] == 3
    assert cfg["fit"]["reg_noise_std"] == pytest.approx(1 / 30)  # the resolved config, rules applied
    h = np.load(out / "history.npz")
    assert h["loss"].shape == (12,)
    # the comparison figure: observation | restored | clean, side by side
    figure = iio.imread(out / "comparison.png")
    assert figure.shape[1] > 2.5 * figure.shape[0]


def test_run_refuses_to_overwrite(finished_run):
    _, out = finished_run
    before = (out / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="not empty.*--overwrite"):
        restore_lib.run(tiny_config(**{"fit.num_iter": 2}), str(out))
    assert (out / "metrics.json").read_text() == before


@pytest.mark.parametrize(
    "fields,error,message",
    [
        ({"image": "/nonexistent/x.png"}, ValueError, "no such image file"),
        ({"task": "deblur3d"}, ValueError, "unknown task"),
        ({"sigma": 300.0}, ValueError, "sigma must be in"),
        ({"fit.num_iter": 0}, ValueError, "num_iter must be in"),
    ],
)
def test_bad_configs_fail_before_anything_is_written(tmp_path, fields, error, message):
    with pytest.raises(error, match=message):
        restore_lib.run(tiny_config(**fields), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_image_too_small_and_unreadable(tmp_path):
    from experiments.configs import denoise_f16

    small = tmp_path / "small.png"
    iio.imwrite(small, np.zeros((10, 10, 3), np.uint8))
    config = denoise_f16.get_config()
    config.image = str(small)
    with pytest.raises(ValueError, match="too small"):  # the standard net needs 33 px or more
        restore_lib.run(config, str(tmp_path / "o"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    config.image = str(bad)
    with pytest.raises(ValueError, match="cannot read"):
        restore_lib.run(config, str(tmp_path / "o2"))


def test_seeds_and_image_folder(tmp_path):
    from skimage import data

    photo = data.astronaut()
    folder = tmp_path / "images"
    folder.mkdir()
    iio.imwrite(folder / "face.png", photo[120:152, 170:202])
    iio.imwrite(folder / "wide.png", photo[300:324, 100:140])
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    restore_lib.run(tiny_config(images=str(folder), seeds=2, **{"fit.num_iter": 6}), str(out))
    summary = json.loads((out / "metrics.json").read_text())
    assert [os.path.basename(row["image"]) for row in summary["images"]] == ["face.png", "wide.png"]
    for name, shape in (("face", (32, 32, 3)), ("wide", (24, 40, 3))):
        d = out / name
        for f in ("mean.png", "uncertainty.png", "uncertainty.npy", "seed0_ema.png", "seed1_final.png", "ema.png",
                  "comparison.png"):
            assert (d / f).is_file(), (name, f)
        m = json.loads((d / "metrics.json").read_text())
        assert m["seeds"] == 2 and m["shape"] == list(shape)
        assert len(m["psnr_seeds"]) == 2
        np.testing.assert_allclose(m["psnr_seeds_mean"], np.mean(m["psnr_seeds"]), rtol=1e-6)
        np.testing.assert_allclose(m["psnr_seeds_std"], np.std(m["psnr_seeds"]), rtol=1e-6)
        # the uncertainty map is the per-pixel std of the two seeds' averaged outputs (8-bit files)
        e0 = iio.imread(d / "seed0_ema.png") / 255.0
        e1 = iio.imread(d / "seed1_ema.png") / 255.0
        np.testing.assert_allclose(np.load(d / "uncertainty.npy"), np.abs(e0 - e1) / 2, atol=2.5 / 255)
        np.testing.assert_allclose(m["psnr_ema"], m["psnr_seeds"][0], rtol=1e-6)


def test_progress_warns_once_when_the_loss_is_not_finite(caplog):
    p = progress.Progress(num_iter=4, every=1)
    p(1, {"loss": np.float32(0.1), "psnr_obs": np.float32(20.0)})
    assert p.diverged_at is None
    with caplog.at_level("WARNING"):
        p(2, {"loss": np.float32(np.nan), "psnr_obs": np.float32(np.nan)})
        p(3, {"loss": np.float32(np.inf), "psnr_obs": np.float32(0.0)})
    assert p.diverged_at == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "diverged" in warnings[0] and "step 2" in warnings[0]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_eta_counts_every_part_still_to_come(caplog):
    """Two parts of 10 steps at 2 steps a second: after 4 steps of the first, 16 steps (8 s) are left."""
    clock = FakeClock()
    p = progress.Progress(num_iter=10, every=2, segments=2, clock=clock)
    metrics = {"loss": np.float32(0.1), "psnr_obs": np.float32(20.0)}
    with caplog.at_level(logging.INFO):
        clock.now = 5.0  # the first call: compilation, not timed as steps
        p(1, metrics)
        for step in range(2, 5):
            clock.now += 0.5
            p(step, metrics)
    assert p.eta(4) == pytest.approx(8.0)
    assert "ETA 8 s" in caplog.records[-1].getMessage() and "2.00 it/s" in caplog.records[-1].getMessage()
    for step in range(5, 11):
        clock.now += 0.5
        p(step, metrics)
    clock.now += 3.0  # the second part starts (its compilation again)
    p(1, metrics)
    assert p.segment == 1 and p.steps_left(1) == 9
    assert p.timings()["compile_seconds"] == pytest.approx(5.0)
    assert p.seconds_per_iter() == pytest.approx(0.5)
    assert progress.format_seconds(3725) == "1 h 02 min" and progress.format_seconds(65) == "1 min 05 s"


def test_progress_logs_slow_steps_at_least_every_interval(caplog):
    """Steps of 40 s with a line every 50 steps: a line still comes once a minute, with the rate."""
    clock = FakeClock()
    p = progress.Progress(num_iter=100, every=50, clock=clock, interval=60.0)
    metrics = {"loss": np.float32(0.1), "psnr_obs": np.float32(20.0)}
    with caplog.at_level(logging.INFO):
        p(1, metrics)
        for step in range(2, 6):
            clock.now += 40.0
            p(step, metrics)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["3/100", "5/100"]  # 80 s after step 1, then 80 s after step 3
    assert "40.0 s/it" in lines[-1] and "ETA 1 h 03 min" in lines[-1]  # 95 steps left at 40 s each


def test_command_line_smoke(tiny_config_file, tmp_path):
    """The one command-line run: flags reach the config, files are written, errors are one line."""
    out = tmp_path / "out"
    r = cli(f"--config={tiny_config_file}", f"--out_dir={out}", "--num_iter=3", "--seed=3", "--sigma=30")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["fit"]["num_iter"], cfg["seed"], cfg["sigma"]) == (3, 3, 30.0)
    assert "step 3/3" in r.stderr and "ETA" in r.stderr  # progress is shown
    r = cli(f"--config={tiny_config_file}", f"--out_dir={out}", "--num_iter=2")  # the run's folder is not empty
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("restore: error:")
    assert "--overwrite" in r.stderr and "Traceback" not in r.stderr
    for args, message in ((["--default_image_size_missing"], "Unknown command line flag"),
                          (["--config.no_such_key=1"], "no_such_key")):
        r = cli(f"--config={tiny_config_file}", f"--out_dir={tmp_path / 'o'}", *args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
