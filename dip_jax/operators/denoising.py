"""Denoising: A is the identity; the observation is the clean image plus noise.

Two noise models: additive Gaussian (the paper's, the default) with the MSE data term, and
Poisson (photon-limited images: y = counts / peak, counts ~ Poisson(peak * x)) with the
Poisson deviance as data term. The Poisson model is not in the original.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from dip_jax.operators.base import Operator

NOISE_MODELS = ("gaussian", "poisson")

# The deviance needs log(x); the net's sigmoid output is > 0 but can underflow to 0 in float32.
_POISSON_FLOOR = 1e-6


@flax.struct.dataclass
class Denoising(Operator):
    """Additive Gaussian noise with standard deviation `sigma` on the [0, 255] scale, or Poisson noise.

    `simulate` clips to [0, 1] but does not quantise, as the original notebook does
    (REFERENCE §3.2, §6.8). With `noise_model='poisson'`, `peak` is the expected photon
    count of a pixel of intensity 1 (lower is noisier) and `sigma` is unused.
    """

    sigma: float = 25.0
    noise_model: str = flax.struct.field(pytree_node=False, default="gaussian")
    peak: float = 30.0

    def __post_init__(self):
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"unknown noise_model {self.noise_model!r}; expected one of {NOISE_MODELS}")

    def forward(self, x):
        return x

    def data_term(self, x, y):
        if self.noise_model == "gaussian":
            return jnp.mean(jnp.square(x - y))
        # Poisson deviance per pixel, peak * (x - y - y log(x / y)): the negative log-likelihood
        # of the counts up to a constant, shifted to be 0 at x = y (xlogy makes y = 0 pixels exact).
        x = jnp.maximum(x, _POISSON_FLOOR)
        return self.peak * jnp.mean(x - y - xlogy(y, x) + xlogy(y, y))

    def simulate(self, clean, key):
        if self.noise_model == "poisson":
            counts = jax.random.poisson(key, self.peak * jnp.clip(clean, 0.0, 1.0), clean.shape)
            return jnp.clip(counts.astype(clean.dtype) / self.peak, 0.0, 1.0)
        noisy = clean + (self.sigma / 255.0) * jax.random.normal(key, clean.shape, clean.dtype)
        return jnp.clip(noisy, 0.0, 1.0)

    def tile(self, window):
        return self  # pointwise: every tile is denoised as the image is

