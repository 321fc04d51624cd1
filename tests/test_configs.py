"""Every paper-figure config: it validates, and builds the net of its figure (REFERENCE §1.8 counts)."""

import importlib

import jax.numpy as jnp
import pytest

from dip_jax import evaluation, models, operators
from experiments import problems

# config module (and variant) -> (image channels, parameter count of the figure's net)
EXPECTED = {
    ("denoise_f16", None): (3, 2_217_831),
    ("jpeg_snail", None): (3, 572_827),
    ("inpaint_kate", None): (3, 3_002_627),
    ("inpaint_vase", None): (3, 2_157_955),
    ("inpaint_library", None): (3, 2_996_467),
    ("restore_barbara", None): (1, 2_217_573),
    ("restore_kate", None): (3, 1_027_379),
    ("sr_zebra_x4", None): (3, 2_217_831),
    ("sr_zebra_x8", None): (3, 2_217_831),
    ("sr_prior_effect", "deep"): (3, 2_184_307),
    ("sr_prior_effect", "tv"): (3, 64 * 64 * 3),  # the pixels of a 64 x 64 test image
    ("sr_prior_effect", "none"): (3, 64 * 64 * 3),
    ("flash_no_flash", None): (3, 2_184_307),
    # the feature notebooks' 6-level nets; the TV baselines' pixels of a 64 x 64 test image
    ("feature_inversion", "deep"): (3, 2_606_763),
    ("feature_inversion", "tv"): (3, 64 * 64 * 3),
    ("activation_maximization", "deep"): (3, 2_948_567),
    ("activation_maximization", "tv"): (3, 64 * 64 * 3),
    ("activation_channel", "deep"): (3, 2_948_567),
    ("activation_channel", "tv"): (3, 64 * 64 * 3),
}


@pytest.mark.parametrize("name,variant", sorted(EXPECTED, key=str))
def test_config_builds_the_figures_net(name, variant):
    module = importlib.import_module(f"experiments.configs.{name}")
    config = module.get_config() if variant is None else module.get_config(variant)
    if config.task == "flash":
        config.flash = "flash.jpg"  # validate() wants the flash photo named
    if config.task == "inpaint" and not config.mask:
        config.mask = "mask.png"
    problems.validate(config)
    assert module.__doc__ and "python -m experiments.restore" in module.__doc__
    channels, want = EXPECTED[(name, variant)]
    image = jnp.zeros((64, 64, channels))
    problem = problems.ImageProblem("x", image, operators.Denoising(25.0),
                                    code_image=image if config.task == "flash" else None)
    net = problems.build_net(config, problem)
    in_channels = problems.input_config(config, problem).channels
    assert models.num_params(net, (1, 64, 64, in_channels)) == want


def test_prior_effect_variants():
    from experiments.configs import sr_prior_effect

    assert sr_prior_effect.get_config("tv").tv_weight == 1e-7
    assert sr_prior_effect.get_config("none").tv_weight == 0.0
    with pytest.raises(ValueError, match="unknown variant"):
        sr_prior_effect.get_config("bm3d")


@pytest.mark.parametrize("task,sigma,noise_model,want", [
    ("denoise", 25.0, "gaussian", 1 / 30), ("denoise", 50.0, "gaussian", 1 / 20), ("denoise", 75.0, "gaussian", 1 / 20),
    ("denoise", 49.0, "gaussian", 1 / 30), ("denoise", 50.0, "poisson", 1 / 30), ("sr", 50.0, "gaussian", 1 / 30),
])
def test_reg_noise_std_follows_sigma_as_the_original(task, sigma, noise_model, want):
    """sigma_p left to the rule is 1/30, and 1/20 for Gaussian denoising from sigma = 50 (the original's note)."""
    from experiments.configs import denoise_f16

    config = denoise_f16.get_config()
    config.task, config.sigma, config.noise_model = task, sigma, noise_model
    assert config.fit.reg_noise_std is None
    resolved = problems.resolve(config)
    assert resolved.fit.reg_noise_std == pytest.approx(want)
    assert problems.fit_config(config).reg_noise_std == pytest.approx(want)
    assert config.fit.reg_noise_std is None  # the caller's config is left as it was


def test_an_explicit_reg_noise_std_is_kept():
    from experiments.configs import sr_zebra_x4

    config = sr_zebra_x4.get_config()
    config.sigma = 50.0
    assert problems.resolve(config).fit.reg_noise_std == 0.03


@pytest.mark.parametrize("fields,want", [
    ({}, {"early_stopping": "none", "stop_at_detection": False}),  # simulated: the fixed budget
    ({"observation": "noisy.png"}, problems.REAL_DATA_STOPPING),  # a real observation stops by itself
    ({"images": "photos", "observed": True}, problems.REAL_DATA_STOPPING),
    ({"observation": "noisy.png", "fit.early_stopping": "none"}, {"early_stopping": "none"}),
    ({"observation": "photo.jpg", "task": "jpeg"}, problems.REAL_DATA_STOPPING),
    # inpainting and SR improve to the end of their budget (kate, zebra in benchmarks/stopping.py)
    ({"observation": "damaged.png", "task": "inpaint"}, {"early_stopping": "none"}),
    ({"observation": "small.png", "task": "sr"}, {"early_stopping": "none"}),
    ({"observation": "noisy.png", "fit.early_stopping": "wmv"},  # an explicit rule keeps its own fields
     {"early_stopping": "wmv", "es_patience": 1000, "stop_at_detection": False}),
])
def test_auto_stopping_stops_on_real_observations_only(fields, want):
    from experiments.configs import denoise_f16

    config = denoise_f16.get_config()
    assert config.fit.early_stopping == "auto"
    for name, value in fields.items():
        node, key = (config.fit, name[4:]) if name.startswith("fit.") else (config, name)
        node[key] = value
    resolved = problems.fit_config(config)
    assert {k: getattr(resolved, k) for k in want} == want


@pytest.mark.parametrize("name", ["jpeg_snail", "flash_no_flash"])
def test_figures_of_real_photos_keep_the_papers_budget(name):
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    config.observation = "photo.jpg"
    assert problems.fit_config(config).early_stopping == "none"


# feature config -> (layer, unit) it inverts or drives with EfficientNet-Lite0, the default classifier
FEATURE_CONFIGS = {"feature_inversion": ("blocks.10", None), "activation_maximization": ("fc", 100),
                   "activation_channel": ("blocks.10", 2)}


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
@pytest.mark.parametrize("prior", ["deep", "tv"])
def test_feature_configs_build_their_operator(name, prior):
    """Every variant validates; EfficientNet-Lite0's builds its operator, the paper's nets ask for their weights."""
    import jax

    module = importlib.import_module(f"experiments.configs.{name}")
    assert "python -m experiments" in module.__doc__ and "MEASURED" not in module.__doc__
    config = module.get_config(prior)
    problems.validate(config)
    operator = problems.make_operator(config, None, jax.random.key(0))
    base = evaluation.base_operator(operator)
    layer, unit = FEATURE_CONFIGS[name]
    assert base.layer == layer and getattr(base, "unit", None) == unit
    assert base.crop_size == (224, 224) and base.net_size == (256, 256)  # the notebooks' window of a 256 output
    assert (config.net == "pixels") == (prior == "tv") and (config.tv_weight > 0) == (prior == "tv")
    for classifier in ("alexnet_caffe", "vgg19_caffe", "vgg16_caffe"):
        paper = module.get_config(f"{prior},{classifier}")
        assert paper.features.classifier == classifier and paper.fit.num_iter == 3100
        with pytest.raises(problems.ConfigError, match=f"{classifier} needs its weights"):
            problems.validate(paper)


def test_the_notebooks_settings_for_alexnet():
    """REFERENCE §3.2: fc6 inverted at LR 0.001 (AlexNet given 224 x 224, §6.16); fc8 driven at 0.01, conv4 at 0.001."""
    from experiments.configs import activation_channel, activation_maximization, feature_inversion

    inversion = feature_inversion.get_config("deep,alexnet_caffe")
    assert (inversion.features.layer, inversion.fit.lr, tuple(inversion.features.input_size)) == ("fc6", 0.001,
                                                                                                 (224, 224))
    assert inversion.net_overrides.pad == "zero" and inversion.net_overrides.upsample_mode == "nearest"
    classes = activation_maximization.get_config("deep,alexnet_caffe")
    assert (classes.features.layer, classes.fit.lr, classes.fit.reg_noise_std) == ("", 0.01, 0.03)
    channel = activation_channel.get_config("deep,alexnet_caffe")
    assert (channel.features.layer, channel.features.unit, channel.fit.lr) == ("conv4", "2", 0.001)
    tv = activation_maximization.get_config("tv,alexnet_caffe")
    assert (tv.fit.lr, tv.tv_beta, tv.input.offset) == (0.01, 2.0, 0.5)
    assert tv.tv_weight == pytest.approx(1e-6 * 255**4)
