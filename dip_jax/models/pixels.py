"""A "net" whose only parameter is the image: the pixel-space baselines of the SR prior-effect figure.

The notebook's (a) "no prior" and (b) "TV prior" optimise the input tensor of an identity net
(no sigmoid) initialised as U(0, 0.1) noise (REFERENCE §3.2). `PixelImage` is that: a Linen
module whose parameter `image` is initialised to the code z it is first called with, and
which returns it unchanged whatever input it is applied to later. So `fit()` and `restore()`
run it unchanged; the per-step perturbation of z has no effect (the notebook uses none).
"""

from __future__ import annotations

import flax.linen as nn
import jax


class PixelImage(nn.Module):
    num_input_channels: int = 3
    num_output_channels: int = 3

    # No levels and no size constraint: models.size_multiple / min_input_size say so.
    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.ndim != 4 or z.shape[-1] != self.num_input_channels:
            raise ValueError(f"expected z of shape (N, H, W, {self.num_input_channels}), got {tuple(z.shape)}")
        if self.num_input_channels != self.num_output_channels:
            raise ValueError("a PixelImage outputs its input's channels: num_input_channels must equal "
                             f"num_output_channels, got {self.num_input_channels} and {self.num_output_channels}")
        return self.param("image", lambda key: z)
