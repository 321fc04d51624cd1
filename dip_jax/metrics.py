"""Image quality metrics on [0, 1] images (REFERENCE §3.1 'PSNR', §6.9)."""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp


def mse(a, b):
    return jnp.mean(jnp.square(jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32)))


def psnr(x, reference):
    """PSNR with peak 1 over all pixels and channels, no border, no clipping (as the original)."""
    return -10.0 * jnp.log10(mse(x, reference))


def ssim(x, reference):
    """SSIM of two HWC images in [0, 1] (dm-pix: Gaussian window 11, sigma 1.5, mean over channels)."""
    x = jnp.asarray(x, jnp.float32)
    reference = jnp.asarray(reference, jnp.float32)
    if x.shape != reference.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {reference.shape}")
    return dm_pix.ssim(x, reference, max_val=1.0)
