"""The restore driver for every task: outputs, real-data (observation) runs, errors before work."""

import json

import chex
import imageio.v3 as iio
import numpy as np
import pytest
from conftest import feature_config, tiny_config

from experiments import problems, restore_lib
from experiments.configs import common

COMMON_OUTPUTS = ("observation.png", "final.png", "ema.png", "metrics.json", "config.json", "environment.json",
                  "psnr.png", "history.npz")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("files")
    photo = data.astronaut()[100:164, 150:214]  # 64 x 64, a real photo
    iio.imwrite(d / "clean.png", photo)
    iio.imwrite(d / "flash.png", np.clip(photo.astype(int) + 40, 0, 255).astype(np.uint8))
    mask = np.full((64, 64), 255, np.uint8)
    mask[20:30, 20:40] = 0
    iio.imwrite(d / "mask.png", mask)
    holed = photo.copy()
    holed[20:30, 20:40] = 255  # a damaged photo: whatever is in the hole must not matter
    iio.imwrite(d / "damaged.png", holed)
    bad = mask.copy()
    bad[0, 0] = 100
    iio.imwrite(d / "gray_mask.png", bad)
    iio.imwrite(d / "small_mask.png", mask[:32])
    iio.imwrite(d / "odd.png", photo[:62])
    return d


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_sr_from_a_clean_image(files, tmp_path):
    out = tmp_path / "sr"
    restore_lib.run(tiny_config(task="sr", factor=4, image=str(files / "clean.png"), **{"fit.num_iter": 3}), str(out))
    for name in COMMON_OUTPUTS + ("clean.png", "baseline.png"):
        assert (out / name).is_file(), name
    m = _metrics(out)
    assert m["task"] == "sr" and m["factor"] == 4 and m["shape"] == [16, 16, 3]
    for k in ("psnr_final", "ssim_final", "psnr_baseline", "psnr_y_final", "psnr_y_baseline", "psnr_obs_final"):
        assert np.isfinite(m[k]), k
    assert "psnr_input" not in m  # the LR input has no PSNR against the HR image
    assert iio.imread(out / "final.png").shape == (64, 64, 3)
    assert iio.imread(out / "observation.png").shape == (16, 16, 3)
    assert m["psnr_y_baseline"] > 20  # bicubic of a x4 PIL Lanczos LR of a real photo


def test_inpaint_a_damaged_photo_with_its_mask(files, tmp_path):
    out = tmp_path / "inpaint"
    restore_lib.run(tiny_config(task="inpaint", observation=str(files / "damaged.png"), mask=str(files / "mask.png"),
                                clean=str(files / "clean.png"), **{"fit.num_iter": 3}), str(out))
    for name in COMMON_OUTPUTS + ("clean.png", "mask.png"):
        assert (out / name).is_file(), name
    m = _metrics(out)
    assert m["task"] == "inpaint" and m["image"].endswith("damaged.png")
    for k in ("psnr_input", "psnr_final", "ssim_final", "ssim_ema", "psnr_obs_final"):
        assert np.isfinite(m[k]), k
    np.testing.assert_array_equal(iio.imread(out / "mask.png"), iio.imread(files / "mask.png"))


def test_flash_no_flash_without_a_clean_image(files, tmp_path):
    out = tmp_path / "flash"
    # the tiny config's code has 4 channels; the flash photo's 3 decide the net's input depth
    restore_lib.run(tiny_config(task="flash", observation=str(files / "clean.png"), flash=str(files / "flash.png"),
                                **{"fit.num_iter": 3}), str(out))
    for name in COMMON_OUTPUTS + ("flash.png",):
        assert (out / name).is_file(), name
    assert not (out / "clean.png").exists()
    m = _metrics(out)
    assert np.isfinite(m["psnr_obs_final"]) and m["seconds"] > 0
    assert not any(k.startswith(("ssim", "psnr_final", "psnr_ema")) for k in m)  # nothing to score against


@pytest.mark.parametrize("task,extra", [("jpeg", {"jpeg_quality": 5}), ("deblur", {"blur_sigma": 1.5})])
def test_jpeg_and_deblur_runs(files, tmp_path, task, extra):
    c = common.base_config()
    c.net = "skip"
    c.net_overrides.num_channels_down = (8, 8, 8)
    c.net_overrides.num_channels_up = (8, 8, 8)
    c.net_overrides.num_channels_skip = (2, 2, 2)
    c.input.channels = 4
    c.fit.num_iter = 2
    c.task = task
    c.image = str(files / "clean.png")
    for k, v in extra.items():
        c[k] = v
    m = restore_lib.run(c, str(tmp_path / task))
    for name in COMMON_OUTPUTS + ("clean.png",):
        assert (tmp_path / task / name).is_file(), name
    assert m["task"] == task and np.isfinite(m["ssim_final"])
    observation = iio.imread(tmp_path / task / "observation.png") / 255.0
    clean = iio.imread(files / "clean.png") / 255.0
    chex.assert_equal_shape([observation, clean])
    assert 18 < m["psnr_input"] < 35  # a real corruption, not the clean image


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"task": "inpaint", "mask": "{d}/small_mask.png", "image": "{d}/clean.png"},
         "small_mask.png has shape (32, 64)"),
        ({"task": "inpaint", "mask": "{d}/gray_mask.png", "image": "{d}/clean.png"}, "is not binary"),
        ({"task": "inpaint", "image": "{d}/clean.png"}, "needs --mask"),
        ({"task": "sr", "factor": 4, "image": "{d}/odd.png"}, "does not divide the image size 62x64"),
        ({"task": "flash", "observation": "{d}/clean.png"}, "needs --flash"),
    ],
)
def test_task_errors_come_before_anything_is_written(files, tmp_path, fields, message):
    fields = {k: v.format(d=files) if isinstance(v, str) else v for k, v in fields.items()}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        restore_lib.run(tiny_config(**fields), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_config_errors_come_before_any_file_is_read():
    c = common.base_config()
    c.task = "flash"
    with pytest.raises(problems.ConfigError, match="needs --flash"):
        problems.validate(c)
    c.task, c.image, c.observation = "sr", "a.png", "b.png"
    with pytest.raises(problems.ConfigError, match="not both"):
        problems.validate(c)


def test_a_real_observation_stops_by_itself(files, tmp_path, monkeypatch):
    """--observation with the default early_stopping='auto': the fit ends P steps after the detection and
    its result is the image kept there (scored against --clean, shown in comparison.png)."""
    monkeypatch.setitem(problems.REAL_DATA_STOPPING, "es_patience", 4)
    photo = iio.imread(files / "clean.png").astype(float)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 25, photo.shape), 0, 255).astype(np.uint8)
    iio.imwrite(tmp_path / "noisy.png", noisy)
    out = tmp_path / "out"
    restore_lib.run(tiny_config(observation=str(tmp_path / "noisy.png"), clean=str(files / "clean.png"),
                                **{"fit.num_iter": 400, "fit.es_window": 5}), str(out))
    m = _metrics(out)
    assert m["es_stopped"] and m["es_iteration"] >= 5
    assert m["steps_run"] == m["es_iteration"] + 4 < 400  # the rule's patience ran out: the fit ended there
    config = json.loads((out / "config.json").read_text())
    assert config["fit"]["early_stopping"] == "emv" and config["fit"]["stop_at_detection"]
    for name in ("es.png", "es_ema.png", "comparison.png"):
        assert (out / name).is_file(), name
    assert np.isfinite(m["psnr_ema_es"])


# Feature inversion and activation maximisation: EfficientNet-Lite0 sees the top-left 64x64 of the net's output.
WINDOW = 64


@pytest.fixture(scope="module")
def efficientnet_of_runs():
    """The classifier the runs load (problems caches it): scores are checked against it directly."""
    return problems.load_classifier("efficientnet_lite0", "")


def test_activation_maximisation_scores_the_saved_image(efficientnet_of_runs, tmp_path):
    from dip_jax import classifiers

    out = tmp_path / "activation"
    m = restore_lib.run(feature_config("activation", **{"fit.num_iter": 20, "fit.lr": 0.01}), str(out))
    for name in ("final.png", "comparison.png", "loss.png", "history.npz", "metrics.json", "config.json"):
        assert (out / name).is_file(), name
    assert not (out / "observation.png").exists() and not (out / "psnr.png").exists()  # a blank canvas: nothing to show
    assert (m["classifier"], m["layer"], m["unit"], m["class_name"]) == ("efficientnet_lite0", "fc", 99, "goose")
    assert "psnr_obs_final" not in m and "psnr_obs" not in np.load(out / "history.npz")
    # the confidence and rank are those of the saved PNG's window, computed directly
    saved = iio.imread(out / "final.png") / 255.0
    assert saved.shape == (72, 72, 3)
    p = np.asarray(classifiers.probabilities(efficientnet_of_runs, saved[:WINDOW, :WINDOW].astype(np.float32)))
    np.testing.assert_allclose(m["target_probability_final"], p[99], rtol=1e-4, atol=1e-7)
    assert m["target_rank_final"] == 1 + int(np.sum(p > p[99]))
    assert m["top1_class_final"] == int(np.argmax(p))
    loss = np.load(out / "history.npz")["loss"]
    print(f"goose logit fit: loss {loss[0]:.1f} -> {loss[-1]:.1f}, p {m['target_probability_final']:.4f}, "
          f"rank {m['target_rank_final']}")
    assert loss[-1] < loss[0] - 25  # 5 |300 - logit|: the logit rose by 5 or more (measured: 1497.7 -> 1417.4)


def test_feature_inversion_of_a_photo(efficientnet_of_runs, files, tmp_path):
    from dip_jax import io, metrics

    out = tmp_path / "invert"
    m = restore_lib.run(feature_config("invert", image=str(files / "clean.png"), **{"features.layer": "blocks.5",
                                                                                      "fit.lr": 0.02}), str(out))
    assert (m["classifier"], m["layer"], m["shape"]) == ("efficientnet_lite0", "blocks.5", [WINDOW, WINDOW, 3])
    observation = iio.imread(out / "observation.png") / 255.0  # the photo resized to what the classifier sees
    np.testing.assert_allclose(observation, io.resize(io.load_image(str(files / "clean.png")), WINDOW, WINDOW),
                               atol=1e-6)
    window = (iio.imread(out / "final.png") / 255.0)[:WINDOW, :WINDOW].astype(np.float32)
    phi = efficientnet_of_runs.activations(window, "blocks.5")
    target = efficientnet_of_runs.activations(observation.astype(np.float32), "blocks.5")
    np.testing.assert_allclose(m["feature_distance_final"], float(np.sum((phi - target) ** 2) / np.sum(target**2)),
                               rtol=1e-3)
    np.testing.assert_allclose(m["psnr_original_final"], float(metrics.psnr(window, observation)), atol=1e-3)
    loss = np.load(out / "history.npz")["loss"]
    print(f"inversion of blocks.5: loss {loss[0]:.2f} -> {loss[-1]:.2f}, relative distance "
          f"{m['feature_distance_final']:.3f}, {m['psnr_original_final']:.2f} dB")
    assert loss[-1] < 0.8 * loss[0]


def test_tv_prior_baselines_of_the_feature_tasks(tmp_path):
    """The pixels net with a TV term: the activation notebook's TV_2 weight, pixels from 0.5 + U(0, 0.1)."""
    from experiments.configs import activation_maximization

    tv = activation_maximization.get_config("tv")
    fields = {"net": tv.net, "input.channels": 3, "input.offset": tv.input.offset, "tv_weight": tv.tv_weight,
              "tv_beta": tv.tv_beta, "fit.lr": 0.01}
    config = feature_config("activation", **fields)
    config.net_overrides = tv.net_overrides
    m = restore_lib.run(config, str(tmp_path / "tv"))
    assert m["net"] == "pixels" and m["num_params"] == 72 * 72 * 3
    assert (m["tv_weight"], m["tv_beta"]) == (pytest.approx(1e-6 * 255.0**4), 2.0)
    loss = np.load(tmp_path / "tv" / "history.npz")["loss"]
    assert loss[-1] < loss[0]


@pytest.mark.parametrize("fields,message", [
    ({"features.classifier": "resnet50"}, "unknown classifier"),
    ({"features.classifier": "alexnet_caffe"}, "alexnet_caffe needs its weights"),
    ({"features.weights": "/no/such.pth"}, "no such weights file"),
    ({"features.unit": ""}, "needs --config.features.unit"),
    ({"features.unit": "unicorn"}, "no ImageNet class is named 'unicorn'"),
    ({"features.layer": "blocks.8", "features.unit": "goose"}, "its unit is a channel index"),
    ({"features.input_size": (64, 0)}, "features.input_size must be"),
    ({"fit.backtrack": True}, "activation maximisation has none"),
])
def test_bad_feature_settings_fail_before_anything_is_written(tmp_path, fields, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        restore_lib.run(feature_config("activation", **fields), str(out))
    assert not out.exists()
