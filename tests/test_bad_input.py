"""Nothing lost, nothing silently wrong: the driver under bad input, interruption and real-world files."""

import json
import os
import signal

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import tiny_config

from dip_jax import checkpoint, operators
from experiments import outputs, problems, progress, restore_lib
from experiments.configs import config_file_error


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()[120:152, 170:202]  # 32 x 32


def test_images_sharing_a_stem_get_their_own_folders(photo, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    iio.imwrite(folder / "photo.png", photo)
    iio.imwrite(folder / "photo.jpg", photo, quality=95)
    iio.imwrite(folder / "other.png", photo[::-1])
    out = tmp_path / "out"
    metrics = restore_lib.run(tiny_config(images=str(folder), **{"fit.num_iter": 2}), str(out))
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "other", "photo_jpg", "photo_png"]
    names = {os.path.basename(row["image"]) for row in metrics["images"]}
    assert names == {"photo.png", "photo.jpg", "other.png"}
    for d in ("photo_jpg", "photo_png"):
        assert json.loads((out / d / "metrics.json").read_text())["image"].endswith(d.replace("_", "."))


def test_a_bad_file_does_not_sink_the_batch(photo, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    iio.imwrite(folder / "good.png", photo)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = tmp_path / "out"
    with pytest.raises(restore_lib.BatchIncomplete, match="1 of 2 images could not be restored.*broken.png"):
        restore_lib.run(tiny_config(images=str(folder), **{"fit.num_iter": 2}), str(out))
    assert (out / "good" / "final.png").is_file()  # the good image was restored
    summary = json.loads((out / "metrics.json").read_text())
    assert [os.path.basename(f["image"]) for f in summary["failed"]] == ["broken.png"]
    assert "cannot read" in summary["failed"][0]["error"]
    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="no image of .* can be restored"):
        restore_lib.run(tiny_config(images=str(only_bad)), str(tmp_path / "out2"))
    assert not (tmp_path / "out2").exists()


def test_inputs_and_files_of_others_are_never_written_over(photo, tmp_path):
    image = tmp_path / "in.png"
    iio.imwrite(image, photo)
    before = image.read_bytes()
    for overwrite in (False, True):  # an input inside --out_dir is refused, with or without --overwrite
        with pytest.raises(FileExistsError, match="holds the input"):
            restore_lib.run(tiny_config(image=str(image), **{"fit.num_iter": 2}), str(tmp_path), overwrite=overwrite)
    assert image.read_bytes() == before

    out = tmp_path / "out"
    mask = np.full((32, 32), 255, np.uint8)
    mask[10:20, 10:20] = 0
    iio.imwrite(tmp_path / "mask.png", mask)
    restore_lib.run(tiny_config(image=str(image), task="inpaint", mask=str(tmp_path / "mask.png"),
                                **{"fit.num_iter": 2}), str(out))
    assert (out / "mask.png").is_file()
    (out / "notes.txt").write_text("mine")
    restore_lib.run(tiny_config(image=str(image), **{"fit.num_iter": 2}), str(out), overwrite=True)
    assert not (out / "mask.png").exists()  # the previous run's file is gone, not left beside the new ones
    assert (out / "notes.txt").read_text() == "mine"  # a file the runs did not write stays
    manifest = json.loads((out / outputs.MANIFEST).read_text())["files"]
    assert "final.png" in manifest and "notes.txt" not in manifest

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "final.png").write_bytes(b"someone's file")
    with pytest.raises(FileExistsError, match="final.png exists and was not written by a dip-jax run"):
        restore_lib.run(tiny_config(image=str(image), **{"fit.num_iter": 2}), str(foreign), overwrite=True)
    assert (foreign / "final.png").read_bytes() == b"someone's file"


def test_an_unwritable_out_dir_is_found_before_the_fit(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError):
        restore_lib.run(tiny_config(), str(tmp_path / "a_file" / "out"))
    with pytest.raises(FileExistsError, match="not a directory"):
        restore_lib.run(tiny_config(), str(tmp_path / "a_file"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_fit_and_resume_finishes_it(monkeypatch, tmp_path, signum):
    """SIGINT/SIGTERM at step 3: a checkpoint and partial outputs; --resume gives the run that never stopped."""
    config = tiny_config(**{"fit.num_iter": 6, "seed": 2})
    whole = restore_lib.run(config, str(tmp_path / "whole"))

    class SignalAtStep3(progress.Progress):
        def __call__(self, step, m):
            super().__call__(step, m)
            if step == 3:
                signal.raise_signal(signum)

    monkeypatch.setattr(restore_lib, "Progress", SignalAtStep3)
    out = tmp_path / "cut"
    with pytest.raises(restore_lib.Interrupted, match=f"{signal.Signals(signum).name} at step 3 of 6.*--resume") as e:
        restore_lib.run(config, str(out))
    assert e.value.signal == signum
    m = json.loads((out / "metrics.json").read_text())
    assert m["partial"] and m["interrupted_by"] == signal.Signals(signum).name and m["steps_run"] == 3
    assert os.listdir(out / "checkpoints") == ["3"] and (out / "final.png").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    monkeypatch.undo()
    resumed = restore_lib.run(config, str(out), resume=True)
    assert resumed["resumed_from_step"] == 3 and "partial" not in resumed
    assert (out / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
    assert resumed["psnr_ema"] == whole["psnr_ema"]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    config = tiny_config(**{"fit.num_iter": 4})
    restore_lib.run(config, str(tmp_path / "o"), checkpoint_every=2)
    newest = tmp_path / "o" / "checkpoints" / "4"
    for root, _, files in os.walk(newest):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(max(0, os.path.getsize(os.path.join(root, name)) // 3))
    config.fit.num_iter = 5
    with caplog.at_level("WARNING"):
        m = restore_lib.run(config, str(tmp_path / "o"), checkpoint_every=2, resume=True)
    assert m["resumed_from_step"] == 2 and m["steps_run"] == 5
    assert any("damaged" in r.getMessage() for r in caplog.records)
    checkpoints = sorted(os.listdir(tmp_path / "o" / "checkpoints"))
    assert "4.damaged" in checkpoints and "5" in checkpoints  # the damaged one kept aside, not deleted


def test_an_all_black_mask_is_refused(photo, tmp_path):
    iio.imwrite(tmp_path / "in.png", photo)
    iio.imwrite(tmp_path / "black.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="black.png has no known pixel"):
        restore_lib.run(tiny_config(image=str(tmp_path / "in.png"), task="inpaint",
                                    mask=str(tmp_path / "black.png")), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_images_of_a_diverged_fit_are_not_written(tmp_path):
    from test_evaluation import fake_result

    result = fake_result(k=1)
    result = result.replace(finals=result.finals * np.nan)
    problem = problems.ImageProblem("x", result.emas[0], operators.Denoising(25.0))
    not_written = outputs.write_images(str(tmp_path), problem, result)
    assert not_written == ["final.png"]
    assert not (tmp_path / "final.png").exists() and (tmp_path / "ema.png").is_file()


def test_flags_a_task_does_not_read_are_refused():
    problems.check_task_flags("inpaint", ["mask", "seed"])
    with pytest.raises(problems.ConfigError, match="--factor is for --task=sr, and this run's task is denoise"):
        problems.check_task_flags("denoise", ["factor"])
    with pytest.raises(problems.ConfigError, match="--mask is for --task=inpaint"):
        problems.check_task_flags("sr", ["factor", "mask"])


def test_config_file_errors_are_one_line(tmp_path):
    assert config_file_error(str(tmp_path / "missing.py")) == f"no such config file: {tmp_path / 'missing.py'}"
    (tmp_path / "bad.py").write_text("def get_config(:\n")
    assert "syntax error at line 1" in config_file_error(str(tmp_path / "bad.py"))
    assert "is a directory" in config_file_error(str(tmp_path))
    (tmp_path / "good.py").write_text("def get_config():\n    return None\n")
    assert config_file_error(f"{tmp_path / 'good.py'}:variant") is None


def test_metrics_json_is_standard_json(tmp_path):
    outputs.write_json(str(tmp_path / "m.json"), {"psnr": float("nan"), "x": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == {
        "psnr": None, "x": [None, 1.0]}


def test_checkpoint_errors_name_the_folder(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=f"{tmp_path / 'nope'} does not exist"):
        checkpoint.latest(str(tmp_path / "nope"))


def test_a_large_image_restored_in_tiles(photo, tmp_path):
    """--tile: the whole image's outputs, scored whole, from tiles fitted as images of one shape."""
    from skimage import data

    image = data.astronaut()[100:156, 140:200]  # 56 x 60
    iio.imwrite(tmp_path / "in.png", image)
    m = restore_lib.run(tiny_config(image=str(tmp_path / "in.png"), tile=32, tile_overlap=8, seeds=2,
                                    **{"fit.num_iter": 3}), str(tmp_path / "out"))
    assert (m["tiles"], m["tile"], m["tile_overlap"]) == (6, 32, 8) and m["shape"] == [56, 60, 3]  # 2 x 3
    assert iio.imread(tmp_path / "out" / "ema.png").shape == (56, 60, 3)
    assert m["seam_ratio"] > 0 and len(m["psnr_seeds"]) == 2
    sr = restore_lib.run(tiny_config(image=str(tmp_path / "in.png"), task="sr", factor=4, tile=32, tile_overlap=16,
                                     **{"fit.num_iter": 2}), str(tmp_path / "sr"))
    assert sr["shape"] == [14, 15, 3] and iio.imread(tmp_path / "sr" / "final.png").shape == (56, 60, 3)
    with pytest.raises(problems.ConfigError, match="--tile: FlashNoFlash cannot be restored in tiles"):
        restore_lib.run(tiny_config(task="flash", observation=str(tmp_path / "in.png"), flash=str(tmp_path / "in.png"),
                                    tile=32, tile_overlap=8), str(tmp_path / "flash"))
    with pytest.raises(problems.ConfigError, match="tile_overlap=4 is less than the 8 pixels"):
        restore_lib.run(tiny_config(image=str(tmp_path / "in.png"), task="sr", factor=4, tile=32, tile_overlap=4),
                        str(tmp_path / "sr2"))
