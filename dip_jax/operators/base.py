"""The degradation-operator protocol: what the fit needs to know about a task.

An operator is a pytree (a `flax.struct.dataclass`), so it can be passed into jitted and
vmapped functions; array fields (a mask, a kernel) are traced, configuration fields are
marked `pytree_node=False` and are static.

To add a degradation, subclass `Operator` and implement `forward`; override `data_term`
when the loss is not the MSE between `forward(x)` and the observation, `simulate` to make
an observation from a clean image, `baseline` for a classical restoration to compare
with, and `scores` for numbers of the task's own that `dip_jax.evaluation` reports (a
classifier's confidence, a feature distance). The fit touches nothing else.

`observed` is False for a task whose observation is only a placeholder of the right size
that the data term ignores (activation maximisation's blank canvas): the fit then records
no PSNR against it and cannot backtrack on one, and nothing scores the output against it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


class Operator:
    """Base class of degradation operators. Images are HWC float32 in [0, 1]."""

    observed = True  # a class constant, not a field: the observation is data the output is compared with

    def forward(self, x: jax.Array) -> jax.Array:
        """The forward model A(x): what the observation of a clean image x would be, noise-free."""
        raise NotImplementedError

    def data_term(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """The loss between the restored image x and the observation y: MSE(A(x), y) by default."""
        return jnp.mean(jnp.square(self.forward(x) - y))

    def simulate(self, clean: jax.Array, key: jax.Array) -> jax.Array:
        """Make an observation y of a clean image, drawing its randomness from `key`."""
        raise NotImplementedError(f"{type(self).__name__} cannot simulate observations")

    def baseline(self, y: jax.Array) -> jax.Array:
        """A classical restoration of y for comparison; the observation itself by default."""
        return y

    def scores(self, x: jax.Array, y: jax.Array) -> dict:
        """The task's own numbers for a restored image x and the observation y: name -> scalar array.

        Traceable (evaluation jits it with the operator as an argument); none by default.
        """
        del x, y
        return {}

    def output_shape(self, observation_shape) -> tuple:
        """The shape (H, W, C) of the image to restore, given the observation's shape."""
        return tuple(observation_shape)

    def tile(self, window) -> "Operator":
        """This operator for one tile of a large image (`dip_jax.tiles`).

        `window` is the tile's (rows, columns) on the observation's grid. A degradation whose
        arrays do not follow the image's pixels returns itself; one with a per-pixel array (a
        mask) returns it cut to the window. An operator whose loss is not a sum over pixels
        (feature inversion, activation maximisation) cannot be tiled, which this default says.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot be restored in tiles")

    def tile_margin(self) -> int:
        """Observation pixels by which a tile's forward model reaches into its neighbours (a kernel's radius)."""
        return 0
