"""Explicit regularisers added to an operator's data term (REFERENCE §3.2 'SR prior effect').

`Regularized(base, tv_weight)` is an operator: its data term is base.data_term(x, y) +
tv_weight * TV(x), everything else is the base's, so the fit needs no change. With the
pixel-space `models.PixelImage` net it gives the "no prior" (weight 0) and "TV prior"
(weight 1e-7 in the notebook) baselines of the SR prior-effect figure. `tv_beta` is the
exponent of the original's `tv_loss(x, beta)`: 0.5 (the default, the usual isotropic TV)
there, 2 in the activation-maximisation notebook.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dip_jax.operators.base import Operator


def total_variation(x: jax.Array, beta: float = 0.5) -> jax.Array:
    """TV of an HWC image as the original's `tv_loss(x, beta)`: sum over (H-1)x(W-1)xC of (dx² + dy²)^beta.

    beta 0.5 is the isotropic TV. No epsilon inside the power, so the value is the original's
    exactly. For beta < 1 the derivative is infinite at 0 (and in PyTorch 0 * inf gives NaN
    where two neighbours are equal); we take the subgradient 0 there instead (the "double
    where": the power is never evaluated at 0), the minimum-norm subgradient of the norm.
    """
    dx = x[:, 1:] - x[:, :-1]  # (H, W-1, C)
    dy = x[1:, :] - x[:-1, :]  # (H-1, W, C)
    sq = jnp.square(dx[:-1, :]) + jnp.square(dy[:, :-1])
    positive = sq > 0
    safe = jnp.where(positive, sq, 1.0)
    powered = jnp.sqrt(safe) if beta == 0.5 else jnp.power(safe, beta)
    return jnp.sum(jnp.where(positive, powered, 0.0))


@flax.struct.dataclass
class Regularized(Operator):
    """`base` with tv_weight * TV_beta(x) added to its data term."""

    base: Operator
    tv_weight: float = 0.0
    tv_beta: float = flax.struct.field(pytree_node=False, default=0.5)

    @property
    def observed(self) -> bool:
        return self.base.observed

    def forward(self, x):
        return self.base.forward(x)

    def data_term(self, x, y):
        return self.base.data_term(x, y) + self.tv_weight * total_variation(x, self.tv_beta)

    def simulate(self, clean, key):
        return self.base.simulate(clean, key)

    def baseline(self, y):
        return self.base.baseline(y)

    def scores(self, x, y):
        return self.base.scores(x, y)

    def output_shape(self, observation_shape):
        return self.base.output_shape(observation_shape)

    def tile(self, window):
        return self.replace(base=self.base.tile(window))

    def tile_margin(self) -> int:
        return self.base.tile_margin()
