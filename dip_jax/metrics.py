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


def rgb_to_y(image):
    """Luma of an HWC [0, 1] image as the SR protocol (REFERENCE §4.3): (219 (0.299 R + 0.587 G + 0.114 B) + 16) / 255.

    That is OpenCV's float RGB -> YCrCb luma rescaled to [16/255, 235/255], MATLAB's
    `rgb2ycbcr`. A 1-channel image is taken as R = G = B.
    """
    image = jnp.asarray(image, jnp.float32)
    if image.shape[-1] == 1:
        luma = image[..., 0]
    else:
        luma = 0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]
    return (219.0 * luma + 16.0) / 255.0


def psnr_y(x, reference, shave: int = 4):
    """The paper's SR PSNR (REFERENCE §4.3): Y channel, peak 1, border shaved.

    The eval script keeps rows and columns [first + shave, last - shave) of the evaluated
    region, i.e. drops `shave` pixels at the top and left and `shave + 1` at the bottom and
    right (503 x 503 of a 512 x 512 image with shave 4). Here the region is the whole image.
    """
    x, reference = jnp.asarray(x), jnp.asarray(reference)
    if x.shape != reference.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {reference.shape}")
    h, w = x.shape[:2]
    if min(h, w) <= 2 * shave + 1:
        raise ValueError(f"a {h}x{w} image is too small for a border shave of {shave}")
    window = (slice(shave, h - shave - 1), slice(shave, w - shave - 1))
    return psnr(rgb_to_y(x)[window], rgb_to_y(reference)[window])
