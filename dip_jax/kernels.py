"""Fixed resampling kernels of the original code (REFERENCE §4.1).

These are numpy constants: the original stores them as trainable `nn.Parameter`s
(REFERENCE §6.13); we knowingly keep them fixed, which is what the notebooks
intend (they optimise only the net's own parameters).
"""

from __future__ import annotations

import numpy as np

# name -> (kernel family, support, width as a function of the factor, sigma)
_DOWNSAMPLER_KERNELS = {
    "lanczos2": ("lanczos", 2, lambda f: 4 * f + 1, None),
    "lanczos3": ("lanczos", 3, lambda f: 6 * f + 1, None),
    "gauss12": ("gauss", None, lambda f: 7, 0.5),
    "gauss1sq2": ("gauss", None, lambda f: 9, 1.0 / np.sqrt(2.0)),
    "box": ("box", None, lambda f: f, None),
}

KERNEL_TYPES = tuple(_DOWNSAMPLER_KERNELS)


def _lanczos(d: np.ndarray, support: int) -> np.ndarray:
    """L(d) = a sin(pi d) sin(pi d / a) / (pi^2 d^2), L(0) = 1."""
    d = np.asarray(d, np.float64)
    safe = np.where(d == 0, 1.0, d)
    val = support * np.sin(np.pi * safe) * np.sin(np.pi * safe / support) / (np.pi**2 * safe**2)
    return np.where(d == 0, 1.0, val)


def kernel_1d(factor: int, kernel_type: str, phase: float = 0.5) -> np.ndarray:
    """The separable 1-D factor of the original's `get_kernel`, normalised to sum 1.

    The 2-D kernel of the original is the outer product of this vector with itself
    (its per-pixel values are products of the two 1-D distances' weights, and the
    normalisation of an outer product is the outer product of the normalisations).
    """
    if kernel_type not in _DOWNSAMPLER_KERNELS:
        raise ValueError(f"unknown kernel type {kernel_type!r}; expected one of {KERNEL_TYPES}")
    if phase not in (0, 0.5):
        raise ValueError(f"phase must be 0 or 0.5, got {phase}")
    family, support, width_fn, sigma = _DOWNSAMPLER_KERNELS[kernel_type]
    width = width_fn(factor)
    if family == "box":
        if phase != 0.5:
            raise ValueError("the box kernel is always half-phased (phase=0.5)")
        return np.full(width, 1.0 / width)
    size = width - 1 if phase == 0.5 else width
    center = (width + 1) / 2.0
    idx = np.arange(1, size + 1, dtype=np.float64)
    offset = idx + 0.5 - center if phase == 0.5 else idx - center
    if family == "lanczos":
        vals = _lanczos(np.abs(offset) / factor, support)
    else:  # gauss: the original scales distances by 1/2 whatever the factor
        if phase != 0:
            raise ValueError("gauss kernels need phase=0")
        d = offset / 2.0
        vals = np.exp(-(d**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    return vals / vals.sum()


def kernel_2d(factor: int, kernel_type: str, phase: float = 0.5) -> np.ndarray:
    k = kernel_1d(factor, kernel_type, phase)
    return np.outer(k, k).astype(np.float32)


def preserve_size_pad(kernel_size: int, factor: int) -> int:
    """Replication padding per side used with `preserve_size=True` (REFERENCE §4.1)."""
    if kernel_size % 2 == 1:
        return (kernel_size - 1) // 2
    return (kernel_size - factor) // 2
