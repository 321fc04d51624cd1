"""What `experiments/restore.py` does: config -> library calls -> files in an output folder.

This is the only layer that reads files, the clock or writes results; the library below
it is pure.
"""

from __future__ import annotations

import importlib.metadata
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
from dip_jax import checkpoint, ensemble, io, metrics, models, operators
from dip_jax import fit as fit_lib
from dip_jax.restore import InputConfig, code_shape, fit_inputs, restore

TASKS = ("denoise", "inpaint", "sr", "jpeg", "flash", "deblur")
MASK_GENERATORS = ("bernoulli", "text", "box")
# Tasks whose operator depends on the image (a mask, a flash photo): one image per run.
PER_IMAGE_TASKS = ("inpaint", "flash")
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

    if config.images and config.task in PER_IMAGE_TASKS:
        raise ConfigError(f"--images restores a folder for {sorted(set(TASKS) - set(PER_IMAGE_TASKS))}; "
                          f"{config.task} needs its own mask or flash photo per image")
    if config.images and config.observation:
        raise ConfigError("give either --observation or --images (with --config.observed=True for degraded ones)")


# sigma_p of denoising (REFERENCE §3.2): the original uses 1/30 for sigma = 25 and says to use
# 1/20 for sigma = 50; it names no other value, so the larger one applies from sigma = 50 on.
DENOISING_REG_NOISE_STD = ((50.0, 1.0 / 20.0), (0.0, 1.0 / 30.0))


def reg_noise_std(config: ml_collections.ConfigDict) -> float:
    """sigma_p for `config.fit.reg_noise_std = None`: the original's rule for denoising, else 1/30."""
    sigma = float(config.sigma) if config.task == "denoise" and config.noise_model == "gaussian" else 0.0
    return next(std for threshold, std in DENOISING_REG_NOISE_STD if sigma >= threshold)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with the fields left to a rule (None) filled in, as config.json records it."""
    config = config.copy_and_resolve_references()
    if config.fit.reg_noise_std is None:
        config.fit.reg_noise_std = reg_noise_std(config)
    return config


def fit_config(config: ml_collections.ConfigDict) -> fit_lib.FitConfig:
    return fit_lib.FitConfig(**resolve(config).fit.to_dict())


# Registry names built by the original's get_net: their output channels are `n_channels`.
GET_NET_NAMES = ("standard", "text_inpainting", "skip_depth6", "skip_depth4", "skip_depth2")
# Registry names that build an architecture with its defaults: the code's channels follow `config.input`.
ARCHITECTURE_NAMES = ("skip", "hourglass", "UNet", "ResNet", "texture_nets", "deep_decoder", "conv_decoder", "pixels")


def build_net(config: ml_collections.ConfigDict, image_channels: int, image_size: Optional[tuple] = None):
    """The configured net, with its output channels (and a ConvDecoder's output size) from the image."""
    overrides = dict(config.net_overrides.to_dict())
    if config.net == "pixels":  # no BatchNorm in a pixel image: the base config's BN setting does not apply
        overrides.pop("bn_scale_init", None)
    overrides.setdefault("n_channels" if config.net in GET_NET_NAMES else "num_output_channels", image_channels)
    if "num_input_channels" not in overrides and config.net in ARCHITECTURE_NAMES:
        overrides["num_input_channels"] = config.input.channels
    if config.net == "conv_decoder" and image_size is not None:
        overrides.setdefault("output_size", tuple(image_size))
    if config.get("remat", False):
        overrides["remat"] = True
    try:
        net = models.get(config.net, **overrides)
    except TypeError as e:  # an override the architecture does not take
        raise ConfigError(f"the net {config.net!r} does not take {e}") from None
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


def load_problem(config: ml_collections.ConfigDict, key: jax.Array, path: str = ""):
    """(clean image or None, observation, operator) for the configured task.

    With `observation` (or `observed`) the degraded image is the user's own and nothing is
    simulated; `clean`, when given, is only used for scoring. Otherwise `image` (or the
    default photo) is the clean image, which the operator corrupts with `key`.
    """
    if path:  # folder mode: this image stands for --image
        config = config.copy_and_resolve_references()
        config.image = path
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


def code_input(config: ml_collections.ConfigDict, observation_shape) -> tuple[InputConfig, Optional[jax.Array]]:
    """The code's `InputConfig` and image: the config's noise, or for flash the flash photo (REFERENCE §3.2)."""
    if config.task != "flash":
        return InputConfig(config.input.kind, config.input.channels, config.input.scale), None
    flash = load_flash(config, observation_shape)
    return InputConfig("image", flash.shape[-1], config.input.scale), flash


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
        self.diverged_at = None  # the first logged step whose loss was not finite

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
            v = {k: float(np.mean(x)) for k, x in m.items()}  # the mean over seeds, if several
            if not np.isfinite(v["loss"]) and self.diverged_at is None:
                self.diverged_at = step
                logging.warning("the loss is %s at step %d: the fit diverged; try a lower --lr, or "
                                "--config.fit.backtrack=True to step back from such jumps", v["loss"], step)
            parts = [f"step {step}/{self.num_iter}", f"loss {v['loss']:.5f}", f"psnr_obs {v['psnr_obs']:.2f}"]
            if "psnr_clean" in v:
                parts += [f"psnr {v['psnr_clean']:.2f}", f"psnr_ema {v['psnr_ema_clean']:.2f}"]
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
        "orbax_checkpoint": importlib.metadata.version("orbax-checkpoint"),
        "python": sys.version.split()[0],
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": _git_revision(),
    }


def plot_history(path: str, history: dict, title: str, es_iteration: Optional[int] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history["loss"]) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, history["psnr_obs"], label="output vs observation", lw=1)
    if "psnr_clean" in history:
        ax.plot(steps, history["psnr_clean"], label="output vs clean", lw=1)
        ax.plot(steps, history["psnr_ema_clean"], label="averaged output vs clean", lw=1.5)
    if es_iteration:
        ax.axvline(es_iteration, color="k", ls="--", lw=1, label=f"early stop (iteration {es_iteration})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _quiet_orbax(record) -> bool:
    """Keep orbax's per-save INFO lines and read-only notices out of the progress log."""
    return "orbax" not in record.pathname or record.levelno >= 40  # logging.ERROR


logging.get_absl_handler().addFilter(_quiet_orbax)


# Config fields a resumed run may change: how long it runs and how often it logs.
RESUMABLE_CHANGES = (("fit", "num_iter"), ("log_every",))


def checkpoint_metadata(config, fcfg, observation_shape, code_shape) -> dict:
    run_config = json.loads(config.to_json_best_effort())
    for path in RESUMABLE_CHANGES:
        parent = run_config
        for name in path[:-1]:
            parent = parent[name]
        parent.pop(path[-1], None)
    return checkpoint.metadata(fcfg, observation_shape, code_shape, run_config=run_config)


def early_stopping_metrics(result, history: dict, clean) -> dict:
    """The detection, and against the clean image the oracle from the history and the gap."""
    out = {}
    es_iteration = None
    if result.stop is not None:
        es_iteration = int(result.stop.iteration) or None  # 0: no check yet (fewer steps than the window)
        out.update(es_iteration=es_iteration, es_stopped=bool(result.stop.stopped))
    if clean is not None and len(history.get("psnr_clean", ())):
        curve = history["psnr_clean"]
        out.update(oracle_iteration=int(np.argmax(curve)) + 1, oracle_psnr=float(np.max(curve)))
        if es_iteration:
            out.update(psnr_es=float(curve[es_iteration - 1]), es_gap_db=float(np.max(curve) - curve[es_iteration - 1]))
            if len(history.get("psnr_ema_clean", ())):
                out.update(psnr_ema_es=float(history["psnr_ema_clean"][es_iteration - 1]))
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no such image folder: {folder}")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def seed_keys(fit_key: jax.Array, num_seeds: int) -> jax.Array:
    """Seed i's key; seed 0 of a K-seed run is the single-seed run with the same --seed."""
    return jnp.stack([jax.random.fold_in(fit_key, i) for i in range(num_seeds)])


def write_outputs(out_dir: str, config, clean, observation, result, num_seeds: int, operator,
                  input_image=None) -> dict:
    """Images, history and the quality metrics of one image's fit (all seeds; seed 0 is the single run).

    `result` has a leading seed axis (`ensemble.SeedsResult`, or `as_seeds` of a single fit).
    """
    io.save_image(os.path.join(out_dir, "observation.png"), observation)
    io.save_image(os.path.join(out_dir, "final.png"), result.finals[0])
    io.save_image(os.path.join(out_dir, "ema.png"), result.emas[0])
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
    history = {k: (v[0] if num_seeds == 1 else v) for k, v in result.history.items()}
    np.savez_compressed(os.path.join(out_dir, "history.npz"), **history)
    out = {"steps_run": int(result.history["loss"].shape[1]),
           "backtracks": int(np.sum(result.history["backtracked"])),
           "final_loss": float(np.mean(result.history["loss"][:, -1]))}
    if config.task == "sr":
        out["factor"] = int(config.factor)
    if config.tv_weight:
        out["tv_weight"] = float(config.tv_weight)
    # What can always be measured: how well A(output) reproduces the observation.
    out["psnr_obs_final"] = float(metrics.psnr(operator.forward(result.finals[0]), observation))
    if num_seeds > 1:
        io.save_image(os.path.join(out_dir, "mean.png"), result.mean)
        std = np.asarray(result.std)
        scale = float(std.max()) or 1.0
        io.save_image(os.path.join(out_dir, "uncertainty.png"), std / scale)  # 1 = the largest std
        np.save(os.path.join(out_dir, "uncertainty.npy"), std)
        out["uncertainty_max"] = scale
        for i in range(num_seeds):
            io.save_image(os.path.join(out_dir, f"seed{i}_final.png"), result.finals[i])
            io.save_image(os.path.join(out_dir, f"seed{i}_ema.png"), result.emas[i])
    if clean is not None:
        if observation.shape == clean.shape:
            out.update(psnr_input=float(metrics.psnr(observation, clean)),
                       ssim_input=float(metrics.ssim(observation, clean)))
        # psnr_final / psnr_ema are seed 0's: the single-seed run with this --seed
        out.update(
            psnr_final=float(metrics.psnr(result.finals[0], clean)),
            psnr_ema=float(metrics.psnr(result.emas[0], clean)),
            ssim_final=float(metrics.ssim(result.finals[0], clean)),
            ssim_ema=float(metrics.ssim(result.emas[0], clean)),
            psnr_ema_best=float(np.max(result.history["psnr_ema_clean"][0])),
            psnr_ema_best_iteration=int(np.argmax(result.history["psnr_ema_clean"][0])) + 1,
        )
        if baseline is not None:
            out.update(psnr_baseline=float(metrics.psnr(baseline, clean)),
                       ssim_baseline=float(metrics.ssim(baseline, clean)))
        if config.task == "sr":  # the paper's protocol: Y channel, 4/5-pixel border shaved (REFERENCE §4.3)
            out.update(psnr_y_final=float(metrics.psnr_y(result.finals[0], clean)),
                       psnr_y_ema=float(metrics.psnr_y(result.emas[0], clean)),
                       psnr_y_baseline=float(metrics.psnr_y(baseline, clean)))
        if num_seeds > 1:
            seeds = [float(metrics.psnr(e, clean)) for e in result.emas]
            out.update(
                psnr_seeds=seeds,
                psnr_seeds_mean=float(np.mean(seeds)),
                psnr_seeds_std=float(np.std(seeds)),
                psnr_mean_image=float(metrics.psnr(result.mean, clean)),
                ssim_mean_image=float(metrics.ssim(result.mean, clean)),
            )
    history0 = {k: v[0] for k, v in result.history.items()}
    stop = None if result.state.stopping is None else jax.tree_util.tree_map(lambda x: x[0], result.state.stopping)
    if stop is not None:  # seed 0's detection, as the single-seed run's
        out.update(early_stopping_metrics(fit_lib.FitResult(result.finals[0], result.emas[0], {}, None, stop),
                                          history0, clean))
        if out.get("es_iteration"):
            io.save_image(os.path.join(out_dir, "es.png"), stop.output)
            if config.fit.ema_decay is not None:
                io.save_image(os.path.join(out_dir, "es_ema.png"), stop.average)
    plot_history(os.path.join(out_dir, "psnr.png"), history0,
                 f"{config.task}: {os.path.basename(out_dir.rstrip('/')) or out_dir}", out.get("es_iteration"))
    return out


def as_seeds(result: fit_lib.FitResult, history: dict) -> ensemble.SeedsResult:
    """A single fit as the K = 1 case of an ensemble (leading seed axis), for `write_outputs`."""
    return ensemble.SeedsResult(
        finals=result.final[None], emas=result.ema[None], mean=result.ema, std=jnp.zeros_like(result.ema),
        history={k: np.asarray(v)[None] for k, v in history.items()},
        state=jax.tree_util.tree_map(lambda x: x[None], result.state),
    )


def image_source(config: ml_collections.ConfigDict, path: str) -> str:
    """What metrics.json names as the image: its path, the observation's, or the shipped default."""
    return path or config.observation or f"skimage.data.astronaut (crop {config.default_image_size})"


def run_metrics(config: ml_collections.ConfigDict, fcfg, num_params: int, num_seeds: int, progress) -> dict:
    """The metrics of a run that every image's metrics.json repeats; call it once the fit has finished."""
    ran = progress.first is not None  # a resumed run may have had no step left
    out = {
        "task": config.task,
        "net": config.net,
        "num_params": num_params,
        "num_iter": fcfg.num_iter,
        "seed": config.seed,
        "seeds": num_seeds,
        "seconds": time.perf_counter() - progress.start,
        "seconds_per_iter": progress.seconds_per_iter() if ran else None,
        "compile_seconds": progress.first[1] - progress.start if ran else None,
    }
    if config.task == "denoise":
        out["sigma"] = float(config.sigma)
    if progress.diverged_at is not None:
        out["diverged_at_step"] = progress.diverged_at
    return out


def write_run_files(out_dir: str, config: ml_collections.ConfigDict) -> None:
    """config.json and environment.json beside the results."""
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2))
    with open(os.path.join(out_dir, "environment.json"), "w") as f:
        json.dump(environment(), f, indent=2)


def run(
    config: ml_collections.ConfigDict,
    out_dir: str,
    overwrite: bool = False,
    *,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> dict:
    """Restore the configured image(s) and write every output into `out_dir`; returns the metrics.

    With `config.images` (a folder), each image gets a subfolder of `out_dir` named after it,
    and `out_dir/metrics.json` holds a row per image. With `checkpoint_every`, the fit's state
    is saved to `out_dir/checkpoints` every that many steps; `resume` continues from the newest
    one there (same config apart from num_iter and log_every), giving the same result as a run
    that never stopped. Checkpoints are for one image and one seed.
    """
    validate(config)
    config = resolve(config)
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if checkpoint_every or resume:
        if config.seeds != 1 or config.images:
            raise ConfigError("checkpoints and --resume are for one image and one seed (no --seeds, no --images)")
        return run_checkpointed(config, out_dir, overwrite, checkpoint_every=checkpoint_every, resume=resume)
    fcfg = fit_config(config)
    paths = list_images(config.images) if config.images else [config.image]
    prepare_out_dir(out_dir, overwrite)
    key = jax.random.key(config.seed)
    obs_key, fit_key = jax.random.split(key)
    problems = []
    for j, path in enumerate(paths):
        image_key = obs_key if len(paths) == 1 else jax.random.fold_in(obs_key, j)
        problems.append(load_problem(config, image_key, path))
    channels = {p[1].shape[-1] for p in problems}
    if len(channels) > 1:
        raise ConfigError(f"the images mix channel counts {sorted(channels)}; restore gray and colour apart")
    operator = problems[0][2]
    out_h, out_w, out_c = operator.output_shape(problems[0][1].shape)
    if config.net == "conv_decoder" and len({p[1].shape for p in problems}) > 1:
        raise ConfigError("conv_decoder makes one output size: restore a folder of one image size with it")
    net = build_net(config, out_c, (out_h, out_w))
    num_params = models.num_params(net, code_shape(net, out_h, out_w))
    input_config, input_image = code_input(config, problems[0][1].shape)
    num_seeds = config.seeds
    logging.info(
        "restoring %d image(s) (%s) x %d seed(s) with %s (%d parameters) for %d steps on %s",
        len(paths), ", ".join(f"{o.shape[0]}x{o.shape[1]}x{o.shape[2]}" for _, o, _ in problems), num_seeds,
        config.net, num_params, fcfg.num_iter,
        jax.default_backend(),
    )
    progress = Progress(fcfg.num_iter, config.log_every)
    cleans = [c for c, _, _ in problems]
    results = ensemble.fit_images(
        [o for _, o, _ in problems], operator, net, fcfg, seed_keys(fit_key, num_seeds), input_config=input_config,
        input_image=input_image, cleans=None if any(c is None for c in cleans) else cleans, callback=progress,
        method=config.method,
    )
    jax.block_until_ready([r.finals for r in results])
    common = run_metrics(config, fcfg, num_params, num_seeds, progress)
    rows = []
    for path, (clean, observation, _), result in zip(paths, problems, results, strict=True):
        image_dir = out_dir
        if config.images:
            image_dir = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
            os.makedirs(image_dir, exist_ok=True)
        row = {**common, "image": image_source(config, path), "shape": list(observation.shape)}
        row.update(write_outputs(image_dir, config, clean, observation, result, num_seeds, operator, input_image))
        with open(os.path.join(image_dir, "metrics.json"), "w") as f:
            json.dump(row, f, indent=2)
        rows.append(row)
    out = rows[0] if not config.images else {**common, "images": rows}
    if config.images:
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(out, f, indent=2)
    write_run_files(out_dir, config)
    for row in rows:
        logging.info("%s: %s", row["image"], json.dumps({k: row[k] for k in row if k.startswith(("psnr", "seconds"))}))
    return out


def run_checkpointed(
    config: ml_collections.ConfigDict,
    out_dir: str,
    overwrite: bool = False,
    *,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> dict:
    """`run` for one image and one seed, with checkpoints: the same result, resumable.

    With `checkpoint_every`, the fit's state is saved to `out_dir/checkpoints` every that many
    steps; `resume` continues from the newest one there (same config apart from num_iter and
    log_every), giving the same result as a run that never stopped.
    """
    fcfg = fit_config(config)
    checkpoint_dir = os.path.join(out_dir, "checkpoints")
    if not resume:
        prepare_out_dir(out_dir, overwrite)
    key = jax.random.key(config.seed)
    obs_key, fit_key = jax.random.split(key)
    fit_key = seed_keys(fit_key, 1)[0]  # seed 0, exactly as the run without checkpoints
    clean, observation, operator = load_problem(config, obs_key, config.image)
    out_h, out_w, out_c = operator.output_shape(observation.shape)
    net = build_net(config, out_c, (out_h, out_w))
    input_config, input_image = code_input(config, observation.shape)
    z, crop, state_key = fit_inputs(observation, operator, net, fit_key, input_config, input_image)
    meta = checkpoint_metadata(config, fcfg, observation.shape, z.shape)
    state, previous = None, {}
    if resume:  # checked before anything is written: a bad folder leaves every file as it was
        checkpoint.check(checkpoint_dir, meta)
        template = fit_lib.init_state(net, z, fcfg, state_key, fit_lib.Problem(net, crop))
        state, previous = checkpoint.restore(checkpoint_dir, template, meta)
        resumed_from = int(state.step)  # read now: the fit's first step consumes (donates) the state
        logging.info("resuming from step %d of %s", resumed_from, checkpoint_dir)

    def full_history(history):
        if not previous:
            return dict(history)
        if not history:
            return dict(previous)
        return {k: np.concatenate([previous[k], np.asarray(history[k])]) for k in previous}

    def save_checkpoint(state, history):
        checkpoint.save(checkpoint_dir, state, meta, full_history(history))
    num_params = models.num_params(net, (1, *z.shape[-3:]))
    source = image_source(config, config.image)
    logging.info(
        "restoring a %dx%dx%d image (%s) with %s (%d parameters) for %d steps on %s",
        *observation.shape, source, config.net, num_params,
        fcfg.num_iter, jax.default_backend(),
    )
    progress = Progress(fcfg.num_iter, config.log_every)
    result = restore(
        observation, operator, net, fcfg, fit_key, input_config=input_config, input_image=input_image, clean=clean,
        callback=progress, state=state, checkpoint_every=checkpoint_every,
        checkpoint_fn=save_checkpoint if checkpoint_every else None,
    )
    jax.block_until_ready(result.final)
    out = {"image": source, "shape": list(observation.shape),
           **run_metrics(config, fcfg, num_params, 1, progress)}
    history = full_history(result.history)
    if resume:
        out["resumed_from_step"] = resumed_from
    out.update(write_outputs(out_dir, config, clean, observation, as_seeds(result, history), 1, operator,
                             input_image))
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(out, f, indent=2)
    write_run_files(out_dir, config)
    logging.info("wrote %s: %s", out_dir, json.dumps({k: out[k] for k in out if k.startswith(("psnr", "seconds"))}))
    return out
