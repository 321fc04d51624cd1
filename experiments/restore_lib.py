"""What `experiments/restore.py` does: config -> library calls -> files in an output folder.

This is the only layer that reads files, the clock or writes results; the library below
it is pure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

import dip_jax
from dip_jax import fit as fit_lib
from dip_jax import io, metrics, models, operators
from dip_jax.restore import InputConfig, restore

TASKS = ("denoise", "inpaint", "sr", "jpeg", "flash", "deblur")
MASK_GENERATORS = ("bernoulli", "text", "box")
MAX_NUM_ITER = 1_000_000


class ConfigError(ValueError):
    """A config value out of range or of the wrong kind."""


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
    if config.tv_weight < 0:
        raise ConfigError(f"tv_weight must be >= 0, got {config.tv_weight}")


def fit_config(config: ml_collections.ConfigDict) -> fit_lib.FitConfig:
    return fit_lib.FitConfig(**config.fit.to_dict())


def build_net(config: ml_collections.ConfigDict, image_channels: int):
    overrides = dict(config.net_overrides.to_dict())
    if config.net in ("standard", "text_inpainting") or config.net.startswith("skip_depth"):  # get_net's name
        overrides.setdefault("n_channels", image_channels)
    else:
        overrides.setdefault("num_output_channels", image_channels)
    if "num_input_channels" not in overrides and config.net in ("skip", "hourglass", "pixels"):
        overrides["num_input_channels"] = config.input.channels
    net = models.get(config.net, **overrides)
    if config.input.kind == "noise" or config.input.kind == "noise_normal":
        if net.num_input_channels != config.input.channels:
            raise ConfigError(
                f"input.channels is {config.input.channels} but the net {config.net!r} takes "
                f"{net.num_input_channels} input channels"
            )
    return net


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
    operators.inpainting.check_mask(mask, image_shape)
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
    else:
        raise ConfigError(f"unknown task {task!r}")
    if config.tv_weight:
        operator = operators.Regularized(operator, float(config.tv_weight))
    return operator


def load_problem(config: ml_collections.ConfigDict, key: jax.Array):
    """(clean image or None, observation, operator) for the configured task.

    With `observation` (or `observed`) the degraded image is the user's own and nothing is
    simulated; `clean`, when given, is only used for scoring. Otherwise `image` (or the
    default photo) is the clean image, which the operator corrupts with `key`.
    """
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
    return clean, observation, operator


def load_flash(config: ml_collections.ConfigDict, observation_shape) -> jax.Array:
    """The flash photo (the net's input), checked against the no-flash observation."""
    flash = _load(config.flash, tuple(config.crop))
    operators.flash.check_flash_pair(flash.shape, observation_shape)
    return flash


def prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass --overwrite to write into it")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    os.makedirs(out_dir, exist_ok=True)


class Progress:
    """Logs progress lines and measures compile time and time per step from the callbacks."""

    def __init__(self, num_iter: int, every: int):
        self.num_iter, self.every = num_iter, every
        self.start = time.perf_counter()
        self.first = None  # (step, time) of the first completed call: compilation included
        self.last = None
        self._last_log = None

    def __call__(self, step: int, m: dict) -> None:
        now = time.perf_counter()
        if self.first is None:
            jax.block_until_ready(m)
            now = time.perf_counter()
            self.first = (step, now)
            self._last_log = (step, now)
        if step == self.num_iter:  # steps are dispatched asynchronously: wait for the last
            jax.block_until_ready(m)
            now = time.perf_counter()
        self.last = (step, now)
        if step % self.every == 0 or step == self.num_iter:
            rate = (step - self._last_log[0]) / max(now - self._last_log[1], 1e-9)
            self._last_log = (step, now)
            parts = [f"step {step}/{self.num_iter}", f"loss {float(m['loss']):.5f}"]
            parts.append(f"psnr_obs {float(m['psnr_obs']):.2f}")
            if "psnr_clean" in m:
                parts += [f"psnr {float(m['psnr_clean']):.2f}", f"psnr_ema {float(m['psnr_ema_clean']):.2f}"]
            parts.append(f"{rate:.2f} it/s")
            logging.info("  ".join(parts))

    def seconds_per_iter(self) -> float:
        (s0, t0), (s1, t1) = self.first, self.last
        return (t1 - t0) / (s1 - s0) if s1 > s0 else float("nan")


def _git_revision() -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict:
    import flax
    import optax

    return {
        "dip_jax": dip_jax.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": _git_revision(),
    }


def plot_history(path: str, history: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history["loss"]) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, history["psnr_obs"], label="output vs observation", lw=1)
    if "psnr_clean" in history:
        ax.plot(steps, history["psnr_clean"], label="output vs clean", lw=1)
        ax.plot(steps, history["psnr_ema_clean"], label="averaged output vs clean", lw=1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(config: ml_collections.ConfigDict, out_dir: str, overwrite: bool = False) -> dict:
    """Restore the configured image and write every output into `out_dir`; returns the metrics."""
    validate(config)
    fcfg = fit_config(config)
    prepare_out_dir(out_dir, overwrite)
    key = jax.random.key(config.seed)
    obs_key, fit_key = jax.random.split(key)
    clean, observation, operator = load_problem(config, obs_key)
    out_shape = tuple(operator.output_shape(observation.shape))
    net = build_net(config, out_shape[-1])
    input_config = InputConfig(config.input.kind, config.input.channels, config.input.scale)
    input_image = None
    if config.task == "flash":  # the flash photo is the code z (REFERENCE §3.2)
        input_image = load_flash(config, observation.shape)
        input_config = InputConfig("image", input_image.shape[-1], config.input.scale)
    num_params = models.num_params(net, (1, *out_shape[:2], net.num_input_channels))
    source = config.observation or config.image or "skimage astronaut crop"
    logging.info(
        "%s: restoring a %dx%dx%d image (%s) with %s (%d parameters) for %d steps on %s",
        config.task, *out_shape, source, config.net, num_params, fcfg.num_iter, jax.default_backend(),
    )
    progress = Progress(fcfg.num_iter, config.log_every)
    result = restore(
        observation, operator, net, fcfg, fit_key, input_config=input_config, input_image=input_image,
        clean=clean, callback=progress,
    )
    jax.block_until_ready(result.final)
    seconds = time.perf_counter() - progress.start

    io.save_image(os.path.join(out_dir, "observation.png"), observation)
    io.save_image(os.path.join(out_dir, "final.png"), result.final)
    io.save_image(os.path.join(out_dir, "ema.png"), result.ema)
    if clean is not None:
        io.save_image(os.path.join(out_dir, "clean.png"), clean)
    baseline = None
    base_operator = operator.base if isinstance(operator, operators.Regularized) else operator
    if isinstance(base_operator, operators.SuperResolution):
        baseline = base_operator.baseline(observation)
        io.save_image(os.path.join(out_dir, "baseline.png"), baseline)
    if isinstance(base_operator, operators.Inpainting):
        io.save_image(os.path.join(out_dir, "mask.png"), base_operator.mask)
    if input_image is not None:
        io.save_image(os.path.join(out_dir, "flash.png"), input_image)
    np.savez_compressed(os.path.join(out_dir, "history.npz"), **result.history)

    out = {
        "task": config.task,
        "image": source if config.observation or config.image else
        f"skimage.data.astronaut (crop {config.default_image_size})",
        "shape": list(observation.shape),
        "net": config.net,
        "num_params": num_params,
        "num_iter": fcfg.num_iter,
        "seed": config.seed,
        "seconds": seconds,
        "seconds_per_iter": progress.seconds_per_iter(),
        "compile_seconds": progress.first[1] - progress.start,
        "backtracks": int(np.sum(result.history["backtracked"])),
        "final_loss": float(result.history["loss"][-1]),
    }
    if config.task == "denoise":
        out["sigma"] = float(config.sigma)
    if config.task == "sr":
        out["factor"] = int(config.factor)
    if config.tv_weight:
        out["tv_weight"] = float(config.tv_weight)
    # What can always be measured: how well A(output) reproduces the observation.
    out["psnr_obs_final"] = float(metrics.psnr(operator.forward(result.final), observation))
    if clean is not None:
        if observation.shape == clean.shape:
            out.update(psnr_input=float(metrics.psnr(observation, clean)),
                       ssim_input=float(metrics.ssim(observation, clean)))
        out.update(
            psnr_final=float(metrics.psnr(result.final, clean)),
            psnr_ema=float(metrics.psnr(result.ema, clean)),
            ssim_final=float(metrics.ssim(result.final, clean)),
            ssim_ema=float(metrics.ssim(result.ema, clean)),
            psnr_ema_best=float(np.max(result.history["psnr_ema_clean"])),
            psnr_ema_best_iteration=int(np.argmax(result.history["psnr_ema_clean"])) + 1,
        )
        if baseline is not None:
            out.update(psnr_baseline=float(metrics.psnr(baseline, clean)),
                       ssim_baseline=float(metrics.ssim(baseline, clean)))
        if config.task == "sr":  # the paper's protocol: Y channel, 4/5-pixel border shaved (REFERENCE §4.3)
            out.update(psnr_y_final=float(metrics.psnr_y(result.final, clean)),
                       psnr_y_ema=float(metrics.psnr_y(result.ema, clean)),
                       psnr_y_baseline=float(metrics.psnr_y(baseline, clean)))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2))
    with open(os.path.join(out_dir, "environment.json"), "w") as f:
        json.dump(environment(), f, indent=2)
    plot_history(os.path.join(out_dir, "psnr.png"), result.history, f"{config.task}: {out['image']}")
    logging.info("wrote %s: %s", out_dir, json.dumps({k: out[k] for k in out if k.startswith(("psnr", "seconds"))}))
    return out
