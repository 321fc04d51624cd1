"""What `experiments/why_it_works.py` computes: Fig. 2's targets and loss curves, untrained nets' outputs.

Pure functions of their arguments and a PRNG key; `fit_speed` and `untrained` also write
their figures into a folder and return the numbers that metrics.json records.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import ensemble, fit, inputs, models, operators
from dip_jax.restore import InputConfig
from experiments import outputs

LOGGED_STEPS = (1, 10, 100, 1000)
# Losses (MSE on [0, 1]) whose first step metrics.json records: 0.01 is 20 dB, 0.002 is 27 dB.
LOSS_LEVELS = (0.01, 0.002)


def shuffle_pixels(image, key):
    """The image with its pixel positions permuted at random (each pixel's channels stay together)."""
    h, w, c = image.shape
    return jax.random.permutation(key, image.reshape(h * w, c)).reshape(h, w, c)


def fit_targets(image, key, sigma: float = 25.0) -> dict:
    """Fig. 2's four targets from one HWC image in [0, 1]: name -> image."""
    noise_key, shuffle_key, uniform_key = jax.random.split(key, 3)
    noisy = jnp.clip(image + sigma / 255.0 * jax.random.normal(noise_key, image.shape), 0.0, 1.0)
    return {"image": image, "image + noise": noisy, "shuffled pixels": shuffle_pixels(image, shuffle_key),
            "U(0, 1) noise": jax.random.uniform(uniform_key, image.shape)}


def fit_curves(targets: dict, net, config, key) -> dict:
    """The loss at every step of fitting `net` (one code z, one initialisation from `key`) to each target."""
    results = ensemble.fit_images(list(targets.values()), operators.Denoising(), net, config, key[None],
                                  input_config=InputConfig("noise", net.num_input_channels))
    return {name: jnp.asarray(r.history["loss"][0]) for name, r in zip(targets, results, strict=True)}


def untrained_nets(in_channels: int = 32, width: int = 128) -> dict:
    """The nets whose untrained outputs are compared: name -> Linen module (`width` channels a level, the
    paper's 128; fewer only to make the nets cheap)."""
    hourglass = {f"hourglass depth {d}": models.hourglass((width,) * d, num_input_channels=in_channels,
                                                           upsample_mode="bilinear", pad="reflection")
                 for d in (1, 3, 5)}
    skip = dict(input_depth=in_channels, skip_n33d=width, skip_n33u=width)
    return {**hourglass, "skip depth 5": models.get("standard", **skip),
            "skip depth 5, nearest": models.get("standard", **skip, upsample_mode="nearest")}


def untrained_outputs(nets: dict, z, key) -> dict:
    """Each net's output (HWC) for code z with parameters initialised from `key`, as a fit's first step sees it."""
    out = {}
    for name, net in nets.items():
        render = lambda z, key, net=net: fit.Problem(net).render(net.init(key, z)["params"], z)  # noqa: E731
        out[name] = fit.compile_once(render, z, key)(z, key)  # run once: little optimisation
    return out


def roughness(image) -> float:
    """Mean absolute difference between neighbouring pixels over the image's standard deviation."""
    a = np.asarray(image, np.float64)
    steps = np.concatenate([np.abs(np.diff(a, axis=0)).ravel(), np.abs(np.diff(a, axis=1)).ravel()])
    return float(steps.mean() / a.std())


def first_step_below(loss, level: float) -> int | None:
    """The first step (1-based) whose loss is at or below `level`; None if none is."""
    below = np.flatnonzero(np.asarray(loss) <= level)
    return int(below[0]) + 1 if below.size else None


def curve_numbers(curves: dict) -> dict:
    """Each curve's loss at LOGGED_STEPS (those reached) and at its last step, and the first step at or
    below each of LOSS_LEVELS: Fig. 2's reading, how much longer noise takes than the image."""
    return {name: {**{f"loss_step_{s}": float(loss[s - 1]) for s in LOGGED_STEPS if s <= len(loss)},
                   "loss_last": float(loss[-1]),
                   **{f"steps_to_{level:g}": first_step_below(loss, level) for level in LOSS_LEVELS}}
            for name, loss in curves.items()}


def fit_speed(out_dir: str, image, key, net_name: str = "standard", num_iter: int = 2000, lr: float = 0.01,
              sigma: float = 25.0) -> dict:
    """Fig. 2 for one HWC image: fit_speed.png, fit_speed.npz, and each curve's numbers."""
    h, w, c = image.shape
    targets = fit_targets(jnp.asarray(image), jax.random.fold_in(key, 0), sigma)
    net = models.build(net_name, 32, c, (h, w))
    config = fit.FitConfig(num_iter=num_iter, lr=lr, reg_noise_std=0.0, ema_decay=None)
    curves = fit_curves(targets, net, config, jax.random.fold_in(key, 1))
    np.savez_compressed(os.path.join(out_dir, "fit_speed.npz"), **{k: np.asarray(v) for k, v in curves.items()})
    outputs.plot_loss(os.path.join(out_dir, "fit_speed.png"), curves,
                      f"fitting {net_name} to {h}x{w} targets (MSE)", log_x=True)
    return {"size": [h, w], "net": net_name, "num_iter": num_iter, "lr": lr, "sigma": sigma,
            "curves": curve_numbers(curves)}


def untrained(out_dir: str, size: int, key, width: int = 128) -> dict:
    """untrained.png: each net of `untrained_nets` on one size x size code; their roughness and std."""
    z = inputs.noise(jax.random.fold_in(key, 2), size, size, 32)
    images = untrained_outputs(untrained_nets(32, width), z, jax.random.fold_in(key, 3))
    scores = {name: {"roughness": roughness(image), "std": float(image.std())} for name, image in images.items()}
    titles = {name: f"{name}\nroughness {score['roughness']:.3f}" for name, score in scores.items()}
    outputs.plot_panels(os.path.join(out_dir, "untrained.png"), [(titles[name], images[name]) for name in images])
    return {"size": size, "width": width, "nets": scores}
