"""Deblurring: A convolves each channel with a known kernel (not in the original; users asked for it).

The blur keeps the image size: replication padding, as the SR downsampler uses, then a
'valid' correlation with the kernel flipped, i.e. a true convolution. `simulate` blurs and
adds Gaussian noise of std `noise_sigma` on the [0, 255] scale, clipped to [0, 1].
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dip_jax.operators.base import Operator


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """A normalised 2-D Gaussian kernel; `size` defaults to the odd 2 * ceil(3 sigma) + 1."""
    if not sigma > 0:
        raise ValueError(f"the blur sigma must be > 0, got {sigma}")
    size = size or 2 * int(np.ceil(3 * sigma)) + 1
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(d**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def check_kernel(kernel) -> None:
    k = np.asarray(kernel)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"the blur kernel must be 2-D with odd sides, got shape {k.shape}")
    if not np.all(np.isfinite(k)) or not abs(float(k.sum()) - 1.0) < 1e-3:
        raise ValueError(f"the blur kernel must be finite and sum to 1, it sums to {float(k.sum()):.4g}")


@flax.struct.dataclass
class Deblurring(Operator):
    """y = k * x (per channel, same size), plus noise when simulated."""

    kernel: jax.Array  # (kh, kw), odd sides, sums to 1
    noise_sigma: float = 1.0

    def forward(self, x):
        kh, kw = self.kernel.shape
        ph, pw = kh // 2, kw // 2
        padded = jnp.pad(x, ((ph, ph), (pw, pw), (0, 0)), mode="edge")
        c = x.shape[-1]
        w = jnp.broadcast_to(self.kernel[::-1, ::-1, None, None].astype(x.dtype), (kh, kw, 1, c))
        return jax.lax.conv_general_dilated(
            padded[None], w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c
        )[0]

    def simulate(self, clean, key):
        blurred = self.forward(clean)
        noisy = blurred + (self.noise_sigma / 255.0) * jax.random.normal(key, blurred.shape, blurred.dtype)
        return jnp.clip(noisy, 0.0, 1.0)

    def tile(self, window):
        return self  # the same blur everywhere; the overlap carries the kernel's reach (tile_margin)

    def tile_margin(self) -> int:
        return max(self.kernel.shape) // 2

