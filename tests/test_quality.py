"""benchmarks/quality.py: each protocol end to end on tiny images, its scores recomputed by hand, resume.

Every run uses one tiny net and 3 steps, so the compiled steps are shared between tests; the
scores are checked against numpy recomputations from the files the benchmark writes.
"""

import html.parser
import json
import os
import subprocess
import sys

import imageio.v3 as iio
import jax
import numpy as np
import pytest
from conftest import TINY_CONFIG
from PIL import Image

from benchmarks import paper_numbers, quality_lib, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_ITER = 3


def tiny_net_config():
    """test_cli's tiny config (a 3-level skip net of 8 channels): its net, net_overrides and input are used."""
    namespace = {}
    exec(TINY_CONFIG, namespace)
    return namespace["get_config"]()


def run(protocol, images, out_dir, **kw):
    return quality_lib.run(protocol, str(images), str(out_dir), num_iter=NUM_ITER, net_config=tiny_net_config(), **kw)


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def luma(rgb):
    """BT.601 luma on the [16, 235] / 255 scale, from the formula of REFERENCE §4.3."""
    return (219 * (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) + 16) / 255


def read(path):
    return iio.imread(path).astype(np.float64) / 255


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def sr_images(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("sr")
    iio.imwrite(d / "butterfly.png", photo[100:140, 150:198])  # 48 wide, 40 high: cropped to 32x32
    iio.imwrite(d / "big.png", photo[:64, :64])  # skipped by max_size
    return d


def test_sr_protocol(sr_images, tmp_path):
    paper = tmp_path / "paper"  # a published image of the same stem, shown beside ours in report.html
    paper.mkdir()
    iio.imwrite(paper / "butterfly.png", iio.imread(sr_images / "butterfly.png")[4:36, 8:40])
    out = run("sr", sr_images, tmp_path / "out", factor=4, max_size=48, paper_dir=str(paper))
    assert [r["image"] for r in out["rows"]] == ["butterfly"]
    row = out["rows"][0]
    assert row["shape"] == [32, 32, 3] and row["observation_shape"] == [8, 8, 3]

    # the notebook's HR and LR (REFERENCE §4.2), rebuilt with PIL: centre crop to multiples of 32, ANTIALIAS
    hr = Image.fromarray(iio.imread(sr_images / "butterfly.png")).crop((8, 4, 40, 36))
    lr = hr.resize((8, 8), Image.LANCZOS)
    np.testing.assert_array_equal(iio.imread(tmp_path / "out/butterfly/observation.png"), np.asarray(lr))
    bicubic = np.asarray(lr.resize((32, 32), Image.BICUBIC)) / 255
    restored = read(tmp_path / "out/butterfly/restored.png")
    assert restored.shape == (32, 32, 3)
    clean = np.asarray(hr) / 255
    window = (slice(4, 32 - 5), slice(4, 32 - 5))  # 4 px shaved at the top/left, 5 at the bottom/right
    np.testing.assert_allclose(row["psnr"], psnr(luma(restored)[window], luma(clean)[window]), atol=1e-3)
    np.testing.assert_allclose(row["baseline_psnr"], psnr(luma(bicubic)[window], luma(clean)[window]), atol=1e-3)

    # the rows were written as each image finished; the table has the paper's Set5 numbers and the differences
    lines = (tmp_path / "out/results.jsonl").read_text().splitlines()
    assert [json.loads(line)["image"] for line in lines] == ["butterfly"]
    table = (tmp_path / "out/results.md").read_text()
    assert table == out["table"]
    assert f"| butterfly (Set5: butterfly) | 32×32 | {row['psnr']:.2f} | 26.23 | {row['psnr'] - 26.23:+.2f} |" in table
    assert f"| {row['baseline_psnr']:.2f} | 22.13 | {row['baseline_psnr'] - 22.13:+.2f} |" in table
    assert "REDUCED SETTINGS (num_iter=3, paper: 2000; net=skip (from --net_config), paper: standard)" in table
    assert "Skipped big: 64×64 is larger than --max_size=48." in table
    assert f"| **mean (1 image)** | | {row['psnr']:.2f} |" in table
    assert "Set5 means: DIP 29.90, bicubic 28.44" in table
    page = ReportParser.of(tmp_path / "out/report.html")
    assert page.captions["butterfly"] == ["low-resolution input", "clean", f"DIP, ours ({row['psnr']:.2f} dB)",
                                          "DIP, the paper's image (26.23 dB)",
                                          f"bicubic ({row['baseline_psnr']:.2f} dB)", "PSNR against iteration"]


@pytest.fixture(scope="module")
def denoise_images(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("denoise")
    iio.imwrite(d / "F16_GT.png", photo[100:132, 150:182])
    iio.imwrite(d / "kodim99.png", photo[300:332, 250:282])
    return d


def test_denoise_protocol_and_resume(denoise_images, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    first = run("denoise", denoise_images, out_dir, sigma=25, seeds=2, max_images=1)
    assert [r["image"] for r in first["rows"]] == ["F16_GT"]
    row = first["rows"][0]
    clean = read(denoise_images / "F16_GT.png")
    np.testing.assert_allclose(row["psnr"], psnr(read(out_dir / "F16_GT/restored.png"), clean), atol=1e-3)
    assert 19 < row["baseline_psnr"] < 22  # sigma 25 on [0, 255], clipped
    assert len(row["metrics"]["psnr_seeds"]) == 2
    results = (out_dir / "results.jsonl").read_text()
    mtime = os.path.getmtime(out_dir / "F16_GT/restored.png")

    with pytest.raises(FileExistsError, match="pass --resume"):
        run("denoise", denoise_images, out_dir, sigma=25, seeds=2)
    with pytest.raises(ValueError, match="other settings.*seeds 2 -> 1"):
        run("denoise", denoise_images, out_dir, sigma=25, seeds=1, resume=True)

    fitted = []
    fit_image = quality_lib.fit_image

    def counting(config, problem, *args):
        fitted.append(problem.observation.shape)
        return fit_image(config, problem, *args)

    monkeypatch.setattr(quality_lib, "fit_image", counting)
    second = run("denoise", denoise_images, out_dir, sigma=25, seeds=2, resume=True)
    assert len(fitted) == 1  # only the image not done yet
    assert [r["image"] for r in second["rows"]] == ["F16_GT", "kodim99"]
    assert (out_dir / "results.jsonl").read_text().startswith(results)
    assert os.path.getmtime(out_dir / "F16_GT/restored.png") == mtime
    table = second["table"]
    assert f"| F16_GT (CBM3D set: F16) | 32×32 | {row['psnr']:.2f} | 33.69 | {row['psnr'] - 33.69:+.2f} |" in table
    kodim = second["rows"][1]
    assert f"| kodim99 | 32×32 | {kodim['psnr']:.2f} |  |  | {kodim['baseline_psnr']:.2f} |  |  |" in table
    mean = (row["psnr"] + kodim["psnr"]) / 2
    assert f"| **mean (2 images)** | | {mean:.2f} |" in table
    matched = f"| **mean of the 1 with a paper number** | | {row['psnr']:.2f} | 33.69 | {row['psnr'] - 33.69:+.2f} |"
    assert matched in table
    # the per-image column is the published images' scores; the paper's own number for two runs is 31.00
    assert "| DIP (ours) | DIP (published image) |" in table
    stated = (f"| **the paper's stated mean of its 9 images (EMA, two runs averaged)** | | {row['psnr']:.2f} (our 1) "
              f"| 31.00 | {row['psnr'] - 31.00:+.2f} |")
    assert stated in table
    assert "Paper text (sigma 25, mean of the 9 images)" in table and "EMA, two runs averaged 31.00" in table

    # report.html: the table and, per image, its crops and PSNR curve, all inline (it opens offline)
    page = ReportParser.of(out_dir / "report.html")
    assert page.sections == ["F16_GT", "kodim99"]
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert page.captions["F16_GT"][:3] == ["clean", f"observation (noisy input {row['baseline_psnr']:.2f} dB)",
                                          f"DIP, ours ({row['psnr']:.2f} dB)"]
    assert page.captions["F16_GT"][-1] == "PSNR against iteration"
    assert "F16_GT (CBM3D set: F16)" in page.cells and f"{row['psnr']:.2f}" in page.cells


class ReportParser(html.parser.HTMLParser):
    """What report.html shows: its sections (one per image), figure captions, image sources, table cells."""

    def __init__(self):
        super().__init__()
        self.sections, self.captions, self.images, self.cells = [], {}, [], []
        self._in = None

    @classmethod
    def of(cls, path):
        parser = cls()
        parser.feed(path.read_text())
        return parser

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
            self.captions[attrs["id"]] = []
        if tag == "img":
            self.images.append(attrs["src"])
        self._in = tag

    def handle_data(self, data):
        if self._in == "figcaption":
            self.captions[self.sections[-1]].append(data)
        if self._in == "td":
            self.cells.append(data)

    def handle_endtag(self, tag):
        self._in = None


def test_denoise_with_given_noisy_images(denoise_images, tmp_path):
    clean = iio.imread(denoise_images / "F16_GT.png")
    noise = np.random.default_rng(0).normal(0, 25, clean.shape)
    (tmp_path / "noisy").mkdir()
    iio.imwrite(tmp_path / "noisy/F16_GT.png", np.clip(np.round(clean + noise), 0, 255).astype(np.uint8))
    out = run("denoise", denoise_images, tmp_path / "out", noisy_dir=str(tmp_path / "noisy"), max_images=1)
    row = out["rows"][0]
    noisy = read(tmp_path / "noisy/F16_GT.png")
    np.testing.assert_array_equal(read(tmp_path / "out/F16_GT/observation.png"), noisy)
    np.testing.assert_allclose(row["baseline_psnr"], psnr(noisy, clean / 255), atol=1e-3)
    np.testing.assert_allclose(row["psnr"], psnr(read(tmp_path / "out/F16_GT/restored.png"), clean / 255), atol=1e-3)
    assert f"given: noisy images from --noisy_dir={tmp_path / 'noisy'}" in out["table"]


def test_noise_and_masks_come_from_fixed_keys(denoise_images, gray_images):
    key = jax.random.key(0)

    def observation(protocol, path, name):
        config = quality_lib.make_config(protocol)
        return quality_lib.load_problem(protocol, config, str(path), "", quality_lib.image_key(key, name)).observation

    for protocol, path in (("denoise", denoise_images / "F16_GT.png"), ("inpaint", gray_images / "clean/barbara.png")):
        a, b = observation(protocol, path, "F16_GT"), observation(protocol, path, "F16_GT")
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, observation(protocol, path, "kodim99"))  # each image its own draw


@pytest.fixture(scope="module")
def gray_images(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("gray")
    gray = np.round(photo[100:132, 150:182] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    gray[:2] = 0  # black pixels that are known: the mask file keeps them, inferring from zeros would not
    for sub in ("clean", "masked", "masks"):
        (d / sub).mkdir()
    iio.imwrite(d / "clean/barbara.png", gray)
    known = np.random.default_rng(0).random(gray.shape) < 0.5
    known[:2] = True
    iio.imwrite(d / "masked/barbara.png", np.where(known, gray, 0).astype(np.uint8))
    iio.imwrite(d / "masks/barbara.png", (known * 255).astype(np.uint8))
    return d


@pytest.mark.parametrize("given,masks", [(False, False), (True, False), (True, True)])
def test_inpaint_protocol(gray_images, tmp_path, given, masks):
    masked_dir = str(gray_images / "masked") if given else ""
    mask_dir = str(gray_images / "masks") if masks else ""
    out = run("inpaint", gray_images / "clean", tmp_path / "out", masked_dir=masked_dir, mask_dir=mask_dir)
    row = out["rows"][0]
    clean = read(gray_images / "clean/barbara.png")
    observation = read(tmp_path / "out/barbara/observation.png")
    mask = read(tmp_path / "out/barbara/mask.png")
    if given:
        np.testing.assert_array_equal(observation, read(gray_images / "masked/barbara.png"))
        if masks:  # the mask as given: the black known rows are known
            np.testing.assert_array_equal(mask, read(gray_images / "masks/barbara.png"))
            assert mask[:2].all()
        else:  # inferred from the zeros (a fallback that says so): the black known rows count as missing
            np.testing.assert_array_equal(mask, observation > 0)
            assert not mask[:2].any()
    else:
        assert 0.4 < mask.mean() < 0.6
        np.testing.assert_array_equal(observation, clean * mask)
    np.testing.assert_allclose(row["psnr"], psnr(read(tmp_path / "out/barbara/restored.png"), clean), atol=1e-3)
    np.testing.assert_allclose(row["baseline_psnr"], psnr(observation, clean), atol=1e-3)
    assert row["shape"] == [32, 32, 1]
    assert f"| barbara (11 gray images: Barbara) | 32×32 | {row['psnr']:.2f} | 32.22 |" in out["table"]
    assert ("given: masked images" in out["table"]) == given
    if given:
        assert ("masks from --mask_dir" in out["table"]) == masks
        assert ("the zero pixels taken as the missing ones" in out["table"]) == (not masks)


def test_paper_number_lookup():
    e = paper_numbers.lookup("sr", "zebra_GT", factor=4)
    assert (e.set_name, e.dip, e.baseline) == ("Set14", 25.71, 24.01)
    assert paper_numbers.lookup("sr", "zebra", factor=8).dip == 20.62  # sigma_p 0.05, the paper's x8
    assert paper_numbers.lookup("sr", "Baby", factor=8).baseline == 27.28
    assert paper_numbers.lookup("sr", "baby", factor=2) is None
    assert paper_numbers.lookup("denoise", "hill", sigma=25).dip == 32.09  # the page's 'hill' file is House
    assert paper_numbers.lookup("denoise", "F16_GT", sigma=50.0).dip == 29.17
    assert paper_numbers.lookup("denoise", "F16", sigma=15) is None
    assert paper_numbers.lookup("inpaint", "Cameraman256").dip == 29.8
    assert paper_numbers.lookup("inpaint", "hill").dip == 32.77  # here Hill is Hill
    assert paper_numbers.lookup("inpaint", "zebra") is None
    # each table's printed mean is the mean of its per-image numbers (up to the last printed digit)
    tables = [*paper_numbers.SR.values(), *paper_numbers.DENOISE.values(), paper_numbers.INPAINT]
    for t in tables:
        assert abs(np.mean(t.dip) - t.dip_mean) <= 0.006, t.set_name
        assert abs(np.mean(t.baseline) - t.baseline_mean) <= 0.006, t.set_name


def test_table_at_the_paper_settings_says_nothing_is_reduced():
    config = quality_lib.make_config("sr", factor=8)
    settings = quality_lib.settings_of("sr", config, "/data/set5", "", False)
    rows = [
        {
            "image": "bird",
            "shape": [288, 288, 3],
            "psnr": 27.5,
            "baseline_psnr": 25.0,
            "seconds": 100.0,
            "num_params": 2217831,
        }
    ]
    table = report.results_table(settings, rows)
    assert "REDUCED" not in table and "| num_iter | 4000 (paper: 4000) |" in table
    assert "| bird (Set5: bird) | 288×288 | 27.50 | 27.09 | +0.41 | 25.00 | 25.28 | -0.28 | 100 |" in table
    assert "| net | standard, 2,217,831 parameters (the paper's) |" in table
    assert "| restored image | the last output |" in table


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("bad")
    for name in ("hr", "lr", "lr_wrong", "empty", "colour", "small"):
        (d / name).mkdir()
    iio.imwrite(d / "hr/a.png", photo[:32, :32])
    iio.imwrite(d / "hr/b.png", photo[32:64, :32])
    iio.imwrite(d / "lr/a.png", photo[:8, :8])
    iio.imwrite(d / "lr_wrong/a.png", photo[:8, :10])
    iio.imwrite(d / "lr_wrong/b.png", photo[:8, :8])
    iio.imwrite(d / "colour/a.png", photo[:32, :32])
    iio.imwrite(d / "small/a.png", photo[:16, :40])
    return d


@pytest.mark.parametrize(
    "protocol,folder,kw,error,message",
    [
        ("deblur", "hr", {}, ValueError, "unknown protocol 'deblur'"),
        ("sr", "nowhere", {}, FileNotFoundError, "no such image folder"),
        ("sr", "empty", {}, FileNotFoundError, "no images"),
        ("sr", "hr", {"factor": 3}, ValueError, r"factors \(4, 8\), got 3"),
        ("sr", "hr", {"lr_dir": "lr"}, ValueError, "has no low-resolution image named b"),
        ("sr", "hr", {"lr_dir": "lr_wrong"}, ValueError, r"a: the clean image is \(32, 32, 3\) but the restored"),
        ("sr", "small", {}, ValueError, "each side needs at least that many pixels"),
        ("sr", "hr", {"noisy_dir": "lr"}, ValueError, "--noisy_dir is for the denoise protocol"),
        ("inpaint", "colour", {}, ValueError, "is a colour image"),
        ("denoise", "hr", {"seeds": 0}, ValueError, "seeds must be in"),
    ],
)
def test_clear_errors_before_anything_is_written(bad_folders, tmp_path, protocol, folder, kw, error, message):
    kw = {k: str(bad_folders / v) if k.endswith("_dir") else v for k, v in kw.items()}
    with pytest.raises(error, match=message):
        run(protocol, bad_folders / folder, tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_command_line(sr_images, tmp_path):
    (tmp_path / "tiny.py").write_text(TINY_CONFIG)
    env = dict(
        os.environ,
        JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "",
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.quality",
            "--protocol=sr",
            f"--images={sr_images}",
            f"--out_dir={tmp_path / 'out'}",
            f"--net_config={tmp_path / 'tiny.py'}",
            f"--num_iter={NUM_ITER}",
            "--max_images=1",
            "--max_size=48",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| butterfly (Set5: butterfly) | 32×32 |" in r.stdout and "REDUCED SETTINGS" in r.stdout
    assert r.stdout.strip() == (tmp_path / "out/results.md").read_text().strip()
    assert len((tmp_path / "out/results.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "out/butterfly/restored.png").is_file()


def test_shares_of_the_benchmark_one_after_another(denoise_images, tmp_path):
    """Two shares into one folder: each image published whole, the table written once both are done (by the
    second), equal to one process's; summarize rebuilds it from the finished folders."""
    from experiments import shards

    whole = run("denoise", denoise_images, tmp_path / "whole", sigma=25)
    out = tmp_path / "shared"
    first = run("denoise", denoise_images, out, sigma=25, shard=shards.Shard(0, 2))
    assert len(first["rows"]) == 1 and not (out / "results.md").exists()
    last = run("denoise", denoise_images, out, sigma=25, shard=shards.Shard(1, 2))
    assert [r["psnr"] for r in last["rows"]] == [r["psnr"] for r in whole["rows"]]
    assert last["table"] == (out / "results.md").read_text()  # the seconds column aside, whole["table"]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["image"] for r in lines] == ["F16_GT", "kodim99"]
    os.remove(out / "results.md")
    assert quality_lib.summarize(str(out))["table"] == last["table"] == (out / "results.md").read_text()
    with pytest.raises(FileExistsError, match="pass --resume"):
        run("denoise", denoise_images, out, sigma=25, shard=shards.Shard(1, 2))
