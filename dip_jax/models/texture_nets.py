"""The original's `get_texture_nets` (`models/texture_nets.py`, REFERENCE §1.6), NHWC.

A multi-scale generator: the input is avg-pooled by each ratio, each branch gets three
conv-norm-act blocks of `conv_num` channels, and the branches are merged coarse to fine.

Where we knowingly differ from the original:
- It runs: the original's conv helper passes a float padding and fails in Python 3.
- The output has `num_output_channels` channels (the original hard-codes 3).
- `fill_noise` (replace each pooled input by fresh N(0, 1) noise at every call) is left
  out: no notebook uses it, and it would need a PRNG key per forward pass.
- The ratios must halve down to 1 (each branch is upsampled x2 into the next, finer one),
  and a size the net cannot keep raises a ValueError instead of giving a cropped output.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import flax.linen as nn
import jax

from dip_jax.models import layers


class TextureNets(nn.Module):
    """Multi-scale texture network; call it on z (1, H, W, C) with H, W divisible by ratios[0]."""

    num_input_channels: int = 3
    num_output_channels: int = 3
    ratios: Sequence[int] = (32, 16, 8, 4, 2, 1)
    pad: str = "zero"
    need_sigmoid: bool = False
    conv_num: int = 8
    upsample_mode: str = "nearest"
    act_fun: str = "LeakyReLU"
    bn_scale_init: str = "ones"

    def __post_init__(self):
        r = tuple(self.ratios)
        if len(r) < 2 or r[-1] != 1 or any(a != 2 * b for a, b in itertools.pairwise(r)):
            raise ValueError(f"ratios must halve from one entry to the next down to 1, e.g. (4, 2, 1); got {r}")
        layers.check_choice("upsample_mode", self.upsample_mode, layers.UPSAMPLE_MODES)
        layers.check_choice("pad", self.pad, layers.PAD_MODES)
        layers.activation(self.act_fun)  # validates the name
        super().__post_init__()

    @property
    def num_levels(self) -> int:
        return len(self.ratios) - 1

    def _block(self, x, features: int, kernel: int):
        x = layers.Conv(features, kernel, pad=self.pad)(x)
        x = layers.BatchNorm(self.bn_scale_init)(x)
        return layers.activation(self.act_fun)(x)

    def _three_blocks(self, x, features: int):
        return self._block(self._block(self._block(x, features, 3), features, 3), features, 1)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.ndim != 4 or z.shape[-1] != self.num_input_channels:
            raise ValueError(f"expected z of shape (N, H, W, {self.num_input_channels}), got {tuple(z.shape)}")
        multiple = size_multiple(self)
        if z.shape[1] % multiple or z.shape[2] % multiple:
            raise ValueError(
                f"texture_nets with ratios {tuple(self.ratios)} needs H and W divisible by {multiple}, got "
                f"{z.shape[1]}x{z.shape[2]} (dip_jax.restore pads the code to a multiple)"
            )
        merged = None
        for j, ratio in enumerate(self.ratios, start=1):
            branch = self._three_blocks(layers.downsample(z, "avg", ratio), self.conv_num)
            if merged is None:  # the coarsest branch
                merged = layers.upsample(branch, self.upsample_mode)
                continue
            # Both inputs of the merge get their own BN first, as in the original.
            branch = layers.BatchNorm(self.bn_scale_init)(branch)
            merged = layers.BatchNorm(self.bn_scale_init)(merged)
            merged = self._three_blocks(layers.concat_crop([merged, branch]), self.conv_num * j)
            if j < len(self.ratios):
                merged = layers.upsample(merged, self.upsample_mode)
        x = layers.Conv(self.num_output_channels, 1, pad=self.pad)(merged)
        return nn.sigmoid(x) if self.need_sigmoid else x


def size_multiple(net: TextureNets) -> int:
    return net.ratios[0]


def min_input_size(net: TextureNets) -> int:
    """The coarsest branch keeps at least 2x2 pixels."""
    return 2 * net.ratios[0]
