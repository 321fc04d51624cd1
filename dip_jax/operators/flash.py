"""Flash / no-flash reconstruction (REFERENCE §3.2 'Flash / no-flash').

The flash image is the network's *input* code (`restore(..., input_config=InputConfig('image', 3),
input_image=flash)`), and the no-flash image is the observation that the output must match
through the identity: the net's structure carries the flash image's detail over while
the fit pulls its colours and light towards the no-flash image. The original uses Adam 0.1
for 601 steps with no perturbation, and notes that a run sometimes gets stuck at a reddish
image (§6.19).
"""

from __future__ import annotations

import flax.struct

from dip_jax.operators.base import Operator


def check_flash_pair(flash_shape, no_flash_shape) -> None:
    if tuple(flash_shape) != tuple(no_flash_shape):
        raise ValueError(f"the flash image is {tuple(flash_shape)} but the no-flash image is {tuple(no_flash_shape)}")


@flax.struct.dataclass
class FlashNoFlash(Operator):
    """y = x, the no-flash image; the flash image goes in as z, not through the operator."""

    def forward(self, x):
        return x

    def simulate(self, clean, key):
        """There is nothing to corrupt: the no-flash photo itself is the observation."""
        del key
        return clean
