"""A folder split into shares: the split itself, and shares run one after another in this process."""

import json
import os
import random

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import tiny_config

from experiments import outputs, restore_lib, shards


def test_partition_is_balanced_by_pixels_and_keeps_sizes_together():
    rng = random.Random(0)
    sizes = [rng.choice([(32, 32), (64, 48), (128, 128), (16, 200)]) for _ in range(40)] + [None, None]
    for count in (1, 2, 3, 4, 7):
        owners = shards.partition(sizes, count)
        assert owners == shards.partition(sizes, count)  # the same in every process
        assert set(owners) <= set(range(count))
        pixels = [0] * count
        for size, owner in zip(sizes, owners, strict=True):
            pixels[owner] += size[0] * size[1] if size else 1
        largest = max(s[0] * s[1] for s in sizes if s)
        assert max(pixels) - min(pixels) <= 2 * largest, (count, pixels)
        assert all(abs(p - sum(pixels) / count) <= largest for p in pixels), (count, pixels)
        # each size's images are in consecutive shares: a share holds few sizes
        for size in set(s for s in sizes if s):
            held = sorted({o for s, o in zip(sizes, owners, strict=True) if s == size})
            assert held == list(range(held[0], held[-1] + 1))
    assert shards.partition([(8, 8)] * 3, 5) == [0, 2, 4]  # more shares than images: some have none


def test_shard_flags():
    assert shards.parse_shard("1/4") == shards.Shard(1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ValueError, match="i/N"):
            shards.parse_shard(bad)
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_ARRAY_TASK_STEP": "2"}  # --array=1-7:2: tasks 1, 3, 5, 7
    assert shards.parse_shard("slurm", env) == shards.Shard(2, 4)
    with pytest.raises(ValueError, match="job array"):
        shards.parse_shard("slurm", {})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five small photos of two sizes."""
    from skimage import data

    path = tmp_path_factory.mktemp("images")
    photo = data.astronaut()
    for i in range(3):
        iio.imwrite(path / f"a{i}.png", photo[40 * i:40 * i + 32, 100:132])
    for i in range(2):
        iio.imwrite(path / f"b{i}.png", photo[200 + 30 * i:200 + 30 * i + 32, 50:98])  # 32 x 48
    return path


def image_files(out):
    """Every published image folder's files and bytes (config.json aside: it is the same config)."""
    found = {}
    for name in sorted(os.listdir(out)):
        if os.path.isdir(out / name) and not name.startswith("."):
            for f in sorted(os.listdir(out / name)):
                if f != "metrics.json":
                    found[f"{name}/{f}"] = (out / name / f).read_bytes()
    return found


def scores(row):
    return {k: v for k, v in row.items() if k.startswith(("psnr", "ssim", "loss"))}


def test_shares_one_after_another_equal_one_process(folder, tmp_path):
    config = tiny_config(images=str(folder), **{"fit.num_iter": 3})
    whole = restore_lib.run(config, str(tmp_path / "whole"))
    out = tmp_path / "shared"
    first = restore_lib.run(config, str(out), shard=shards.Shard(0, 2))
    assert "shard" in first and not (out / "metrics.json").exists()  # the summary waits for the last share
    last = restore_lib.run(config, str(out), shard=shards.Shard(1, 2))
    assert len(first["images"]) == 3 and len(last["images"]) == 5 and last["processes"] == 2  # the folder's summary
    assert [r["image"] for r in last["images"]] == [r["image"] for r in whole["images"]]
    for a, b in zip(last["images"], whole["images"], strict=True):
        assert scores(a) == scores(b), a["image"]
    assert image_files(out) == image_files(tmp_path / "whole")
    assert json.loads((out / "metrics.json").read_text())["images"] == last["images"]
    manifest = set(json.loads((out / outputs.MANIFEST).read_text())["files"])
    assert "a0/final.png" in manifest and "metrics.json" in manifest
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]


def test_resume_redoes_only_what_is_not_finished(folder, tmp_path, caplog):
    config = tiny_config(images=str(folder), **{"fit.num_iter": 3})
    out = tmp_path / "out"
    whole = restore_lib.run(config, str(out))
    finals = {n: (out / n / "final.png").read_bytes() for n in ("a0", "a1", "b0")}
    # as a killed process leaves it: one image half written (staged, never renamed), one never started
    os.rename(out / "a1", out / ".staging-0of1-killed")
    os.remove(out / "b0" / "metrics.json")
    os.remove(out / "metrics.json")
    before = os.path.getmtime(out / "a0" / "final.png")
    with pytest.raises(FileExistsError, match="--resume"):
        restore_lib.run(config, str(out))
    with caplog.at_level("INFO"):
        resumed = restore_lib.run(config, str(out), resume=True)
    assert any("5 image(s), 3 done before, 2 to restore" in r.getMessage() for r in caplog.records)
    assert os.path.getmtime(out / "a0" / "final.png") == before  # finished: not redone
    assert {n: (out / n / "final.png").read_bytes() for n in finals} == finals
    assert [scores(r) for r in resumed["images"]] == [scores(r) for r in whole["images"]]
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]
    with pytest.raises(ValueError, match="another config.*num_iter"):
        restore_lib.run(tiny_config(images=str(folder), **{"fit.num_iter": 4}), str(out), resume=True)


def test_summarize_writes_what_is_finished(folder, tmp_path):
    config = tiny_config(images=str(folder), **{"fit.num_iter": 2})
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="no finished share"):
        restore_lib.summarize(str(out))
    only = restore_lib.run(config, str(out), shard=shards.Shard(1, 3))
    summary = restore_lib.summarize(str(out))
    assert summary["shards_missing"] == ["0/3", "2/3"]
    assert [r["image"] for r in summary["images"]] == [r["image"] for r in only["images"]]
    assert len(summary["unfinished"]) == 5 - len(only["images"])
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(summary))
    assert np.isfinite(summary["seconds"])


def test_a_folder_in_tiles(folder, tmp_path):
    """--tile with --images: each image is one fit of its tiles, scored whole."""
    m = restore_lib.run(tiny_config(images=str(folder), tile=32, tile_overlap=8, **{"fit.num_iter": 2}),
                        str(tmp_path / "out"))
    assert {r["image"].rsplit("/", 1)[-1]: r["tiles"] for r in m["images"]} == {
        "a0.png": 1, "a1.png": 1, "a2.png": 1, "b0.png": 2, "b1.png": 2}
    assert iio.imread(tmp_path / "out" / "b1" / "ema.png").shape == (32, 48, 3)
