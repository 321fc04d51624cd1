"""experiments/restore.py end to end, and its one-line errors."""

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_CONFIG = '''
from experiments.configs import common

def get_config():
    c = common.base_config()
    c.default_image_size = 32
    c.net = "skip"
    c.net_overrides.num_channels_down = (8, 8, 8)
    c.net_overrides.num_channels_up = (8, 8, 8)
    c.net_overrides.num_channels_skip = (2, 2, 2)
    c.net_overrides.upsample_mode = "bilinear"
    c.net_overrides.pad = "reflection"
    c.input.channels = 4
    c.fit.num_iter = 20
    c.log_every = 5
    return c
'''


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.py"
    path.write_text(TINY_CONFIG)
    return str(path)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.restore", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def finished_run(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    r = cli(f"--config={tiny_config}", f"--out_dir={out}", "--num_iter=12", "--seed=3")
    return r, out


def test_cli_writes_every_output(finished_run):
    r, out = finished_run
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("observation.png", "final.png", "ema.png", "clean.png", "metrics.json", "config.json",
                 "environment.json", "psnr.png", "history.npz"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
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
    h = np.load(out / "history.npz")
    assert h["loss"].shape == (12,)
    assert "step 10/12" in r.stderr and "it/s" in r.stderr  # progress is shown


def test_cli_refuses_to_overwrite(finished_run, tiny_config):
    _, out = finished_run
    before = (out / "metrics.json").read_text()
    r = cli(f"--config={tiny_config}", f"--out_dir={out}", "--num_iter=2")
    assert r.returncode != 0
    assert "not empty" in r.stderr and "--overwrite" in r.stderr
    assert (out / "metrics.json").read_text() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["--image=/nonexistent/x.png"], "no such image file"),
        (["--task=deblur3d"], "unknown task"),
        (["--sigma=300"], "sigma must be in"),
        (["--num_iter=0"], "num_iter must be in"),
        (["--default_image_size_missing"], "Unknown command line flag"),
        (["--config.no_such_key=1"], "no_such_key"),
    ],
)
def test_cli_errors_are_one_line(tiny_config, tmp_path, args, message):
    r = cli(f"--config={tiny_config}", f"--out_dir={tmp_path / 'o'}", *args)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_image_too_small_and_unreadable(tmp_path):
    small = tmp_path / "small.png"
    iio.imwrite(small, np.zeros((10, 10, 3), np.uint8))
    r = cli(f"--image={small}", f"--out_dir={tmp_path / 'o'}")  # the standard net needs 33 px or more
    assert r.returncode != 0 and "too small" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    r = cli(f"--image={bad}", f"--out_dir={tmp_path / 'o2'}")
    assert r.returncode != 0 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_cli_seeds_and_image_folder(tiny_config, tmp_path):
    from skimage import data

    photo = data.astronaut()
    folder = tmp_path / "images"
    folder.mkdir()
    iio.imwrite(folder / "face.png", photo[120:152, 170:202])
    iio.imwrite(folder / "wide.png", photo[300:324, 100:140])
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    r = cli(f"--config={tiny_config}", f"--out_dir={out}", f"--images={folder}", "--seeds=2", "--num_iter=6")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert [os.path.basename(row["image"]) for row in summary["images"]] == ["face.png", "wide.png"]
    for name, shape in (("face", (32, 32, 3)), ("wide", (24, 40, 3))):
        d = out / name
        for f in ("mean.png", "uncertainty.png", "uncertainty.npy", "seed0_ema.png", "seed1_final.png", "ema.png"):
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
    from experiments import restore_lib

    progress = restore_lib.Progress(num_iter=4, every=1)
    progress(1, {"loss": np.float32(0.1), "psnr_obs": np.float32(20.0)})
    assert progress.diverged_at is None
    with caplog.at_level("WARNING"):
        progress(2, {"loss": np.float32(np.nan), "psnr_obs": np.float32(np.nan)})
        progress(3, {"loss": np.float32(np.inf), "psnr_obs": np.float32(0.0)})
    assert progress.diverged_at == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "diverged" in warnings[0] and "step 2" in warnings[0]
