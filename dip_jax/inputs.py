"""Input codes z for the network (REFERENCE §2), NHWC with a batch of one."""

from __future__ import annotations

import jax
import jax.numpy as jnp

NOISE_TYPES = ("u", "n")


def noise(key: jax.Array, height: int, width: int, channels: int = 32, noise_type: str = "u", scale: float = 0.1):
    """`get_noise(..., 'noise')`: U[0, 1) or N(0, 1) times `scale`.

    The default is U(0, 0.1), as in the original: `var` there is a scale, not a variance,
    and z is not zero-mean (REFERENCE §2, §6.7).
    """
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"unknown noise_type {noise_type!r}; expected one of {NOISE_TYPES}")
    shape = (1, height, width, channels)
    draw = jax.random.uniform(key, shape) if noise_type == "u" else jax.random.normal(key, shape)
    return draw * scale


def meshgrid(height: int, width: int) -> jax.Array:
    """`get_noise(2, 'meshgrid', ...)`: channel 0 = x/(W-1), channel 1 = y/(H-1), in [0, 1]."""
    xs = jnp.linspace(0.0, 1.0, width) if width > 1 else jnp.zeros(1)
    ys = jnp.linspace(0.0, 1.0, height) if height > 1 else jnp.zeros(1)
    gx, gy = jnp.meshgrid(xs, ys)
    return jnp.stack([gx, gy], axis=-1)[None]


def from_image(image: jax.Array) -> jax.Array:
    """An image (HWC) used as the code, as the flash/no-flash experiment does."""
    if image.ndim != 3:
        raise ValueError(f"expected an HWC image, got shape {tuple(image.shape)}")
    return jnp.asarray(image, jnp.float32)[None]


def make(key: jax.Array, kind: str, height: int, width: int, channels: int = 32, scale: float = 0.1, image=None,
         offset: float = 0.0):
    """One entry point for configs: kind in {'noise', 'noise_normal', 'meshgrid', 'image'}.

    `offset` is added to the noise kinds (the activation-maximisation notebook's TV baseline
    starts its pixels at 0.5 + U(0, 0.1)).
    """
    if kind in ("noise", "noise_normal"):
        z = noise(key, height, width, channels, "u" if kind == "noise" else "n", scale)
        return z + offset if offset else z
    if kind == "meshgrid":
        return meshgrid(height, width)
    if kind == "image":
        if image is None:
            raise ValueError("input kind 'image' needs an image")
        return from_image(image)
    raise ValueError(f"unknown input kind {kind!r}; expected noise, noise_normal, meshgrid or image")
