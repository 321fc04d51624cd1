"""Denoising: A is the identity; the observation is the clean image plus noise."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dip_jax.operators.base import Operator


@flax.struct.dataclass
class Denoising(Operator):
    """Additive Gaussian noise with standard deviation `sigma` on the [0, 255] scale.

    `simulate` clips to [0, 1] but does not quantise, as the original notebook does
    (REFERENCE §3.2, §6.8).
    """

    sigma: float = 25.0

    def forward(self, x):
        return x

    def simulate(self, clean, key):
        noisy = clean + (self.sigma / 255.0) * jax.random.normal(key, clean.shape, clean.dtype)
        return jnp.clip(noisy, 0.0, 1.0)
