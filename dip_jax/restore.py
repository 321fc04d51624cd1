"""Restore one observation end to end: size handling, the input code, the fit.

The original centre-crops images to a multiple of 32 or 64 and so loses border pixels
(REFERENCE §6.1). We knowingly differ: when the net needs H and W divisible by 2^depth,
the *code* z is made at the next multiple and the net's output is cropped back to the
image's size before the operator sees it, so every pixel of the image is restored and the
loss counts each pixel once.

What each architecture needs comes from `models.size_multiple`, `models.min_input_size` and
`models.code_size` (the decoders take a code smaller than the image they make).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from dip_jax import fit as fit_lib
from dip_jax import inputs, io, models
from dip_jax.operators.base import Operator


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """The code z (REFERENCE §2): kind in {noise, noise_normal, meshgrid, image}."""

    kind: str = "noise"
    channels: int = 32
    scale: float = 0.1
    offset: float = 0.0  # added to the noise kinds


DEFAULT_INPUT = InputConfig()


def padded_geometry(net, height: int, width: int) -> tuple[int, int, tuple]:
    """(padded height, padded width, crop) for an image of this size, or ValueError."""
    multiple = models.size_multiple(net)
    ph, pw, top, left = io.padded_window(height, width, multiple)
    smallest = models.min_input_size(net)
    if min(ph, pw) < smallest:
        levels = getattr(net, "num_levels", None)
        what = f"the net's {levels} levels" if levels else f"this {type(net).__name__}"
        raise ValueError(
            f"the image ({height}x{width}) is too small for {what}: each side must be at least {smallest} pixels"
        )
    crop = None if (ph, pw) == (height, width) else (top, left, height, width)
    return ph, pw, crop


def code_shape(net, height: int, width: int) -> tuple[int, int, int, int]:
    """(1, h, w, channels) of the code `make_code` makes for a height x width output."""
    ph, pw, _ = padded_geometry(net, height, width)
    return (1, *models.code_size(net, ph, pw), net.num_input_channels)


def make_code(key: jax.Array, net, height: int, width: int, input_config: InputConfig, image=None):
    """The code z for the padded size (the net's `models.code_size`), and the crop that brings the output back."""
    ph, pw, crop = padded_geometry(net, height, width)
    code_h, code_w = models.code_size(net, ph, pw)
    if input_config.kind == "image" and (code_h, code_w) != (ph, pw):
        raise ValueError(
            f"an image code needs a net whose code has the image's size; {type(net).__name__}'s is {code_h}x{code_w}"
        )
    if input_config.kind == "image" and image is not None and crop is not None:
        (top, left, h, w) = crop
        image = jnp.pad(jnp.asarray(image), ((top, ph - h - top), (left, pw - w - left), (0, 0)), mode="reflect")
    z = inputs.make(key, input_config.kind, code_h, code_w, input_config.channels, input_config.scale, image,
                    input_config.offset)
    if z.shape[-1] != net.num_input_channels:
        raise ValueError(f"the code has {z.shape[-1]} channels but the net takes {net.num_input_channels}")
    return z, crop


def restore(
    observation: jax.Array,
    operator: Operator,
    net,
    config: fit_lib.FitConfig,
    key: jax.Array,
    *,
    input_config: InputConfig = DEFAULT_INPUT,
    input_image: Optional[jax.Array] = None,
    clean: Optional[jax.Array] = None,
    callback: Optional[Callable] = None,
    **fit_options,
) -> fit_lib.FitResult:
    """Restore `observation` under `operator` with a DIP fit of `net`; pure in `key`.

    The key is split into one key for the code z and one for the fit (parameters and
    per-step perturbations). `fit_options` (`state`, `checkpoint_every`, `checkpoint_fn`)
    go to `fit.fit`; `fit_inputs` gives the code and key that a resumed state belongs to.
    """
    observation = jnp.asarray(observation, jnp.float32)
    if observation.ndim != 3:
        raise ValueError(f"expected an HWC observation, got shape {tuple(observation.shape)}")
    if not bool(jnp.all(jnp.isfinite(observation))):
        raise ValueError("the observation contains NaN or infinite values")
    out_h, out_w, out_c = operator.output_shape(observation.shape)
    if out_c != net.num_output_channels:
        raise ValueError(f"the image has {out_c} channels but the net outputs {net.num_output_channels}")
    z, crop, fit_key = fit_inputs(observation, operator, net, key, input_config, input_image)
    return fit_lib.fit(
        net, z, observation, operator, config, fit_key, clean=clean, crop=crop, callback=callback, **fit_options
    )


def fit_inputs(observation, operator: Operator, net, key: jax.Array, input_config=InputConfig(), input_image=None):
    """(code z, output crop, the fit's key) as `restore` makes them from `key`."""
    out_h, out_w, _ = operator.output_shape(jnp.shape(observation))
    z_key, fit_key = jax.random.split(key)
    z, crop = make_code(z_key, net, out_h, out_w, input_config, input_image)
    return z, crop, fit_key
