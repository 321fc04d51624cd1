"""From a restore config to what is fitted: checked settings, each image's problem, the net and the code.

`load_problems(config, key)` reads every image a run restores (one, or a folder's) and
returns an `ImageProblem` each: the observation, the operator, the clean image when known
and, for flash/no-flash, the image that is the net's input. Everything a run needs is read
and checked here, before anything is written or fitted.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dip_jax import classifiers, ensemble, evaluation, io, models, operators
from dip_jax import fit as fit_lib
from dip_jax.restore import InputConfig

TASKS = ("denoise", "inpaint", "sr", "jpeg", "flash", "deblur", "invert", "activation")
MASK_GENERATORS = ("bernoulli", "text", "box")
# Tasks whose operator depends on the image (a mask, a flash photo), or that have no image
# (activation maximisation): one image per run.
PER_IMAGE_TASKS = ("inpaint", "flash", "activation")
# Tasks of a pretrained classifier (config.features): feature inversion, activation maximisation.
FEATURE_TASKS = ("invert", "activation")
MAX_NUM_ITER = 1_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ConfigError(ValueError):
    """A config value out of range or of the wrong kind."""


@dataclasses.dataclass(frozen=True)
class ImageProblem:
    """One image to restore: what the fit explains and what scores the result."""

    name: str  # what metrics.json calls the image: its path, or the shipped default photo
    observation: jax.Array  # HWC, what the operator's output is fitted to
    operator: operators.Operator
    clean: Optional[jax.Array] = None  # the clean image, when known (only for scoring)
    code_image: Optional[jax.Array] = None  # flash/no-flash: the flash photo, the net's input
    path: str = ""  # the image's file ('' for the default photo)

    @property
    def output_shape(self) -> tuple:
        return tuple(self.operator.output_shape(self.observation.shape))


# The command-line flags that only one task reads.
TASK_FLAGS = {"mask": "inpaint", "factor": "sr", "jpeg_quality": "jpeg", "flash": "flash", "sigma": "denoise"}


def check_task_flags(task: str, given: list[str]) -> None:
    """ConfigError naming the first flag of `given` that this task does not read (e.g. --mask without inpaint)."""
    for name in given:
        if name in TASK_FLAGS and TASK_FLAGS[name] != task:
            raise ConfigError(f"--{name} is for --task={TASK_FLAGS[name]}, and this run's task is {task}: "
                              f"drop --{name} or change the task")


def validate(config: ml_collections.ConfigDict) -> None:
    if config.task not in TASKS:
        raise ConfigError(f"unknown task {config.task!r}; expected one of {TASKS}")
    if not 0 < config.sigma <= 255:
        raise ConfigError(f"sigma must be in (0, 255] (the [0, 255] scale), got {config.sigma}")
    if not 1 <= config.fit.num_iter <= MAX_NUM_ITER:
        raise ConfigError(f"num_iter must be in [1, {MAX_NUM_ITER}], got {config.fit.num_iter}")
    if not config.fit.lr > 0:
        raise ConfigError(f"lr must be > 0, got {config.fit.lr}")
    if config.log_every < 1:
        raise ConfigError(f"log_every must be >= 1, got {config.log_every}")
    if not 1 <= config.seeds <= 1024:
        raise ConfigError(f"seeds must be in [1, 1024], got {config.seeds}")
    if config.images and config.image:
        raise ConfigError("give either an image or a folder of images, not both")
    if config.net not in models.names():
        raise ConfigError(f"unknown net {config.net!r}; expected one of {models.names()}")
    if config.observation and config.image:
        raise ConfigError("give either --image (a clean image to corrupt) or --observation (a degraded one), not both")
    if config.task == "inpaint" and not config.mask:
        raise ConfigError(f"the inpaint task needs --mask=PATH (white = known) or --mask= one of {MASK_GENERATORS}")
    if not 0 < config.mask_keep <= 1:
        raise ConfigError(f"mask_keep must be in (0, 1], got {config.mask_keep}")
    if not (isinstance(config.factor, int) and config.factor >= 1):
        raise ConfigError(f"factor must be a positive integer, got {config.factor!r}")
    if not 1 <= config.jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality must be in [1, 100], got {config.jpeg_quality}")
    if config.task == "flash" and not config.flash:
        raise ConfigError("the flash task needs --flash=PATH (the flash photo, which is the net's input)")
    if config.method not in ensemble.METHODS:
        raise ConfigError(f"unknown method {config.method!r}; expected one of {ensemble.METHODS}")
    if config.tv_weight < 0:
        raise ConfigError(f"tv_weight must be >= 0, got {config.tv_weight}")
    if config.tile < 0 or config.tile_overlap < 0 or (config.tile and config.tile_overlap >= config.tile):
        raise ConfigError(f"need tile >= 0 and 0 <= tile_overlap < tile, got {config.tile} and {config.tile_overlap}")
    if config.images and config.task in PER_IMAGE_TASKS:
        raise ConfigError(f"--images restores a folder for {sorted(set(TASKS) - set(PER_IMAGE_TASKS))}; "
                          f"{config.task} needs its own mask or flash photo per image")
    if config.images and config.observation:
        raise ConfigError("give either --observation or --images (with --config.observed=True for degraded ones)")
    if not config.tv_beta > 0:
        raise ConfigError(f"tv_beta must be > 0, got {config.tv_beta}")
    if config.task in FEATURE_TASKS:
        validate_features(config)


def validate_features(config: ml_collections.ConfigDict) -> None:
    """The classifier settings of feature inversion and activation maximisation."""
    f = config.features
    if f.classifier not in classifiers.names():
        raise ConfigError(f"unknown classifier {f.classifier!r}; expected one of {classifiers.names()}")
    if f.classifier != "efficientnet_lite0" and not f.weights:
        raise ConfigError(f"{f.classifier} needs its weights: --config.features.weights=PATH (a .pth file)")
    if f.weights and not os.path.isfile(f.weights):
        raise ConfigError(f"no such weights file: {f.weights}")
    if config.task == "invert" and f.loss not in operators.feature_inversion.LOSSES:
        raise ConfigError(f"unknown feature loss {f.loss!r}; expected one of {operators.feature_inversion.LOSSES}")
    if config.task == "activation" and not str(f.unit):
        raise ConfigError("activation maximisation needs --config.features.unit: an ImageNet class (name or "
                          "index) of the logits layer, or a channel index of another layer")
    for name in ("input_size", "output_size"):
        size = tuple(f[name])
        if len(size) != 2 or min(size) < 0 or (0 in size and size != (0, 0)):
            raise ConfigError(f"features.{name} must be (height, width) > 0, or (0, 0), got {size}")
    if config.fit.backtrack and config.task == "activation":
        raise ConfigError("backtracking follows the PSNR to the observation; activation maximisation has none")


# sigma_p of denoising (REFERENCE §3.2): the original uses 1/30 for sigma = 25 and says to use
# 1/20 for sigma = 50; it names no other value, so the larger one applies from sigma = 50 on.
DENOISING_REG_NOISE_STD = ((50.0, 1.0 / 20.0), (0.0, 1.0 / 30.0))


def reg_noise_std(config: ml_collections.ConfigDict) -> float:
    """sigma_p for `config.fit.reg_noise_std = None`: the original's rule for denoising, else 1/30."""
    sigma = float(config.sigma) if config.task == "denoise" and config.noise_model == "gaussian" else 0.0
    return next(std for threshold, std in DENOISING_REG_NOISE_STD if sigma >= threshold)


# `early_stopping='auto'` on a real observation (benchmarks/stopping.py measured the rules and
# patience values against the fixed recipes; README "Knowing when to stop"): the fit ends
# `es_patience` steps after the detection and the image at the detection is the result.
REAL_DATA_STOPPING = {"early_stopping": "emv", "es_patience": 200, "stop_at_detection": True}
# ...for the tasks whose observation carries noise the net ends up fitting (denoising: F16 +2.78 dB in
# 0.49 of the time; JPEG: the snail +0.36 dB in 0.61). Inpainting and SR keep improving to their budget
# (kate: -1.78 dB when stopped with P = 200; zebra: no stop), and the other tasks were not measured.
STOPPING_TASKS = ("denoise", "jpeg")


def is_real_observation(config: ml_collections.ConfigDict) -> bool:
    """Whether the observation is a file as the user has it (nothing simulated from a clean image)."""
    return bool(config.observation) or bool(config.observed)


def stopping_fields(config: ml_collections.ConfigDict) -> dict:
    """The fit's stopping fields for `early_stopping='auto'`: stop by itself on real noisy observations
    (no clean image says when to stop there), the fixed budget when the degradation is simulated or the
    task is one that does not overfit (STOPPING_TASKS)."""
    if config.fit.early_stopping != "auto":
        return {}
    if is_real_observation(config) and config.task in STOPPING_TASKS:
        return dict(REAL_DATA_STOPPING)
    return {"early_stopping": "none"}


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with the fields left to a rule (None, 'auto') filled in, as config.json records it."""
    config = config.copy_and_resolve_references()
    if config.fit.reg_noise_std is None:
        config.fit.reg_noise_std = reg_noise_std(config)
    for field, value in stopping_fields(config).items():
        config.fit[field] = value
    return config


def fit_config(config: ml_collections.ConfigDict) -> fit_lib.FitConfig:
    return fit_lib.FitConfig(**resolve(config).fit.to_dict())


def input_config(config: ml_collections.ConfigDict, problem: ImageProblem) -> InputConfig:
    """The code z (REFERENCE §2): the config's, or for flash/no-flash the flash photo (REFERENCE §3.2)."""
    if problem.code_image is not None:
        return InputConfig("image", problem.code_image.shape[-1], config.input.scale)
    channels = 2 if config.input.kind == "meshgrid" else config.input.channels
    return InputConfig(config.input.kind, channels, config.input.scale, config.input.offset)


def build_net(config: ml_collections.ConfigDict, problem: ImageProblem):
    """The configured net for this problem: its input depth from the code, its output from the image."""
    out_h, out_w, out_c = problem.output_shape
    overrides = dict(config.net_overrides.to_dict())
    if config.remat:
        overrides["remat"] = True
    try:
        return models.build(config.net, input_config(config, problem).channels, out_c, (out_h, out_w), **overrides)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _crop(image, crop):
    """Centre crop to (height, width); (0, 0) keeps the image."""
    h, w = crop
    if not h and not w:
        return image
    return io.center_crop(image, h or image.shape[0], w or image.shape[1])


def _load(path: str, crop=(0, 0)):
    return jnp.asarray(_crop(io.load_image(path), crop))


def load_mask(config: ml_collections.ConfigDict, image_shape, key: jax.Array):
    """The inpainting mask (H, W, 1), 1 = known: from a file, or generated for the image's size."""
    h, w = image_shape[:2]
    if config.mask == "bernoulli":
        return operators.bernoulli_mask(key, h, w, float(config.mask_keep))
    if config.mask == "text":
        return jnp.asarray(operators.text_mask(h, w))
    if config.mask == "box":
        return jnp.asarray(operators.box_mask(h, w, h // 3, w // 3, h // 3, w // 3))
    mask = _crop(io.load_mask(config.mask), tuple(config.crop))
    operators.inpainting.check_mask(mask, image_shape, f"the mask {config.mask}")
    return jnp.asarray(mask)


def blur_kernel(config: ml_collections.ConfigDict) -> np.ndarray:
    if not config.blur_kernel:
        return operators.gaussian_kernel(float(config.blur_sigma))
    if config.blur_kernel.endswith(".npy"):
        kernel = np.load(config.blur_kernel).astype(np.float32)
    else:
        kernel = io.load_image(config.blur_kernel)[..., 0]
        kernel = kernel / max(float(kernel.sum()), 1e-12)
    operators.deblurring.check_kernel(kernel)
    return kernel


@functools.lru_cache(maxsize=4)
def load_classifier(name: str, weights: str = "") -> classifiers.Classifier:
    """A pretrained classifier (read once per process: several runs of one app share it)."""
    return classifiers.get(name, weights or None)


def _size(size) -> Optional[tuple]:
    return tuple(size) if tuple(size) != (0, 0) else None


def feature_operator(config: ml_collections.ConfigDict) -> operators.Operator:
    """The feature task's operator: inverting a layer's activations, or driving one of its units."""
    f = config.features
    classifier = load_classifier(f.classifier, f.weights)
    layer = f.layer or classifier.logits_layer
    sizes = dict(image_size=_size(f.input_size), output_size=_size(f.output_size))
    if config.task == "invert":
        return operators.FeatureInversion(classifier, layer, f.loss, **sizes)
    if layer == classifier.logits_layer:
        unit = classifiers.class_index(f.unit)
    elif str(f.unit).strip().isdigit():
        unit = int(f.unit)
    else:
        raise ConfigError(f"{layer} is not the logits layer: its unit is a channel index, got {f.unit!r}")
    return operators.ActivationMaximization(classifier, layer, unit, int(f.window), f.target, float(f.weight), **sizes)


def make_operator(config: ml_collections.ConfigDict, image_shape, key: jax.Array) -> operators.Operator:
    """The task's operator; `image_shape` is the restored image's (for masks), `key` draws masks."""
    task = config.task
    if task == "denoise":
        operator = operators.Denoising(
            sigma=float(config.sigma), noise_model=config.noise_model, peak=float(config.poisson_peak)
        )
    elif task == "inpaint":
        operator = operators.Inpainting(load_mask(config, image_shape, key))
    elif task == "sr":
        operator = operators.SuperResolution(int(config.factor), config.sr_kernel, float(config.sr_phase))
    elif task == "jpeg":
        operator = operators.JPEGArtifacts(int(config.jpeg_quality))
    elif task == "flash":
        operator = operators.FlashNoFlash()
    elif task == "deblur":
        operator = operators.Deblurring(jnp.asarray(blur_kernel(config)), float(config.blur_noise_sigma))
    elif task in FEATURE_TASKS:
        operator = feature_operator(config)
    else:
        raise ConfigError(f"unknown task {task!r}")
    if config.tv_weight:
        operator = operators.Regularized(operator, float(config.tv_weight), float(config.tv_beta))
    return operator


def image_name(config: ml_collections.ConfigDict, path: str) -> str:
    """What metrics.json names as the image: its path, the observation's, or the shipped default."""
    return path or config.observation or f"skimage.data.astronaut (crop {config.default_image_size})"


def load_problem(config: ml_collections.ConfigDict, key: jax.Array, path: str = "") -> ImageProblem:
    """The configured task's problem for one image.

    With `observation` (or `observed`) the degraded image is the user's own and nothing is
    simulated; `clean`, when given, is only used for scoring. Otherwise `path` (or `image`,
    or the default photo) is the clean image, which the operator corrupts with `key`.
    """
    if path:  # folder mode: this image stands for --image
        config = config.copy_and_resolve_references()
        config.image = path
    if config.task in FEATURE_TASKS:
        return load_feature_problem(config, key, path)
    crop = tuple(config.crop)
    sr = config.task == "sr"
    # For SR the crop is the high-resolution size: a low-resolution observation gets crop / factor.
    observation_crop = tuple(c // config.factor for c in crop) if sr else crop
    clean = observation = None
    if config.observation:
        observation = _load(config.observation, observation_crop)
    elif config.observed or config.task == "flash":  # flash: the no-flash photo is the target, not corrupted
        observation = _load(config.image, observation_crop) if config.image else None
        if observation is None:
            observation = jnp.asarray(io.default_image(config.default_image_size))
    else:
        image = io.load_image(config.image) if config.image else io.default_image(config.default_image_size)
        clean = jnp.asarray(_crop(image, crop))
    if config.clean:
        clean = _load(config.clean, crop)

    if observation is not None and sr:
        image_shape = (observation.shape[0] * config.factor, observation.shape[1] * config.factor, observation.shape[2])
    else:
        image_shape = (observation if observation is not None else clean).shape
    # The mask's key is derived, so the denoising observation keeps being drawn from `key` itself.
    operator = make_operator(config, image_shape, jax.random.fold_in(key, 1))
    if observation is None:
        observation = operator.simulate(clean, key)
    if clean is not None:
        expected = tuple(operator.output_shape(observation.shape))
        if tuple(clean.shape) != expected:
            raise ValueError(f"the clean image is {tuple(clean.shape)} but the restored image will be {expected}")
    code_image = None
    if config.task == "flash":
        code_image = _load(config.flash, crop)
        operators.flash.check_flash_pair(code_image.shape, observation.shape)
    return ImageProblem(image_name(config, path), observation, operator, clean, code_image,
                        path or config.observation or config.image)


def describe_unit(operator: operators.Operator) -> dict:
    """What a feature task's operator inverts or drives, as metrics.json records it."""
    op = evaluation.base_operator(operator)
    out = {"classifier": op.classifier.name, "layer": op.layer}
    if isinstance(op, operators.ActivationMaximization):
        out["unit"] = op.unit
        if op.layer == op.classifier.logits_layer:
            out["class_name"] = classifiers.class_name(op.unit)
    return out


def load_feature_problem(config: ml_collections.ConfigDict, key: jax.Array, path: str = "") -> ImageProblem:
    """A feature task's problem. Inversion: the image (centre-cropped by `crop`, resized to what the
    classifier sees as the original's `get_image` does) is the observation whose features are matched.
    Activation maximisation has no image: its observation is a blank canvas of the classifier's size."""
    operator = make_operator(config, None, key)
    if config.task == "activation":
        unit = describe_unit(operator)
        what = unit.get("class_name", f"channel {unit['unit']}")
        return ImageProblem(f"{unit['classifier']} {unit['layer']}: {what}", operator.simulate(None, key), operator)
    source = path or config.observation or config.image
    image = io.load_image(source) if source else io.default_image(config.default_image_size)
    image = _crop(image, tuple(config.crop))
    if image.shape[-1] == 1:  # the classifiers take RGB
        image = np.repeat(image, 3, axis=-1)
    observation = jnp.asarray(io.resize(image, *evaluation.base_operator(operator).crop_size))
    return ImageProblem(image_name(config, path), observation, operator, path=source)


def list_images(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no such image folder: {folder}")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def no_image_error(folder: str, failures: list[tuple]) -> ValueError:
    return ValueError(f"no image of {folder} can be restored: {failures[0][1]}"
                      + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""))


def load_problems(config: ml_collections.ConfigDict, key: jax.Array,
                  only: Optional[list[int]] = None) -> tuple[list[ImageProblem], list[tuple]]:
    """Every image the config restores (a folder's, or one), each with its own observation key.

    Returns (problems, failures): in a folder, an image that cannot be read or does not fit the
    task is a failure, (path, message), and the others are still restored; with one image, or
    when no image of the folder can be used, the error is raised. `only` (positions in the
    folder's sorted list) loads a share of the folder; an image's key depends on its position
    in the whole folder, so its problem is the same whichever share it is in, and a share
    with no usable image is no error.
    """
    paths = list_images(config.images) if config.images else [config.image]
    share = None if only is None else set(only)
    problems, failures = [], []
    for j, path in enumerate(paths):
        if share is not None and j not in share:
            continue
        try:
            problems.append(load_problem(config, key if len(paths) == 1 else jax.random.fold_in(key, j), path))
        except (ValueError, OSError) as e:
            if not config.images:
                raise
            failures.append((path, str(e)))
    if not problems and only is None:
        raise no_image_error(config.images, failures)
    channels = {p.observation.shape[-1] for p in problems}
    if len(channels) > 1:
        raise ConfigError(f"the images mix channel counts {sorted(channels)}; restore gray and colour apart")
    if config.net == "conv_decoder" and len({p.observation.shape for p in problems}) > 1:
        raise ConfigError("conv_decoder makes one output size: restore a folder of one image size with it")
    return problems, failures
