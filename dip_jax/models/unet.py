"""The original's `UNet` (`models/unet.py`, REFERENCE §1.4), NHWC.

Where we knowingly differ from the original:
- `more_layers > 1` works: the original's loop over the extra up blocks reads an undefined
  `self.more` and crashes; here the extra levels nest as the code plainly meant (each extra
  up block merges with the extra down block one level above it).
- A size the net cannot keep raises a ValueError. The original max-pools with floor and
  crops the encoder features to the upsampled size, so H not divisible by 2^levels silently
  gives a smaller output. `dip_jax.restore` pads the code to a multiple for you.
- `norm_layer` is a name ('instance', the original's default, 'batch' or 'none') rather
  than a class. InstanceNorm2d has no affine parameters, as PyTorch's default.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dip_jax.models import layers

FILTERS = (64, 128, 256, 512, 1024)
UNET_UPSAMPLE_MODES = ("deconv",) + layers.UPSAMPLE_MODES


class UNet(nn.Module):
    """U-Net with 4 + `more_layers` max-pool levels; argument names are the original's.

    Call it on z of shape (1, H, W, num_input_channels) with H and W divisible by
    `2 ** num_levels`; the output is (1, H, W, num_output_channels).
    """

    num_input_channels: int = 3
    num_output_channels: int = 3
    feature_scale: int = 4
    more_layers: int = 0
    # Concatenate an avg-pooled pyramid of the input to every encoder level (unused by the notebooks).
    concat_x: bool = False
    upsample_mode: str = "deconv"
    pad: str = "zero"
    norm_layer: str = "instance"
    need_sigmoid: bool = True
    need_bias: bool = True
    bn_scale_init: str = "ones"  # only for norm_layer='batch'

    def __post_init__(self):
        layers.check_choice("upsample_mode", self.upsample_mode, UNET_UPSAMPLE_MODES)
        layers.check_choice("norm_layer", self.norm_layer, layers.NORMALIZATIONS)
        layers.check_choice("pad", self.pad, layers.PAD_MODES)
        if self.more_layers < 0:
            raise ValueError(f"more_layers must be >= 0, got {self.more_layers}")
        smallest = min(self.filters) - (self.num_input_channels if self.concat_x else 0)
        if smallest < 1:
            raise ValueError(f"feature_scale {self.feature_scale} leaves no channels at the first level")
        super().__post_init__()

    @property
    def filters(self) -> tuple[int, ...]:
        return tuple(f // self.feature_scale for f in FILTERS)

    @property
    def num_levels(self) -> int:
        return 4 + self.more_layers

    def _conv_pair(self, x, features: int, norm: str):
        """`unetConv2`: [conv3 -> norm -> ReLU] x 2."""
        for _ in range(2):
            x = layers.Conv(features, 3, use_bias=self.need_bias, pad=self.pad)(x)
            x = layers.normalization(norm, self.bn_scale_init, affine=False)(x)
            x = nn.relu(x)
        return x

    def _down(self, x, features: int):
        """`unetDown`: max-pool 2x2 (floor), then a conv pair."""
        return self._conv_pair(layers.downsample(x, "max", 2), features, self.norm_layer)

    def _up(self, x, skip, features: int):
        """`unetUp`: x2 upsampling to `features` channels, concat [up, skip], unnormalised conv pair."""
        if self.upsample_mode == "deconv":
            x = layers.ConvTranspose(features, 4, 2, 1)(x)  # always with a bias, as the original
        else:
            x = layers.upsample(x, self.upsample_mode)
            x = layers.Conv(features, 3, use_bias=self.need_bias, pad=self.pad)(x)
        # The encoder features are centre-cropped to the upsampled size when larger.
        return self._conv_pair(layers.concat_crop([x, skip]), features, "none")

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.ndim != 4 or z.shape[-1] != self.num_input_channels:
            raise ValueError(f"expected z of shape (N, H, W, {self.num_input_channels}), got {tuple(z.shape)}")
        multiple = size_multiple(self)
        if z.shape[1] % multiple or z.shape[2] % multiple:
            raise ValueError(
                f"UNet with {self.num_levels} levels needs H and W divisible by {multiple}, got "
                f"{z.shape[1]}x{z.shape[2]} (dip_jax.restore pads the code to a multiple)"
            )
        f = self.filters
        extra = self.num_input_channels if self.concat_x else 0

        def with_input(x, level):  # concat_x: the input avg-pooled `level` times
            if not self.concat_x:
                return x
            pooled = z
            for _ in range(level):
                pooled = layers.downsample(pooled, "avg", 2)
            return jnp.concatenate([x, pooled], axis=-1)

        encoded = [with_input(self._conv_pair(z, f[0] - extra, self.norm_layer), 0)]
        for level in range(1, 5):
            encoded.append(with_input(self._down(encoded[-1], f[level] - extra), level))
        for level in range(5, 5 + self.more_layers):
            encoded.append(with_input(self._down(encoded[-1], f[4] - extra), level))

        x = encoded[-1]
        for level in reversed(range(4, 4 + self.more_layers)):  # the extra levels: f4 channels throughout
            x = self._up(x, encoded[level], f[4])
        for level in reversed(range(4)):
            x = self._up(x, encoded[level], f[level])

        x = layers.Conv(self.num_output_channels, 1, use_bias=self.need_bias, pad=self.pad)(x)
        return nn.sigmoid(x) if self.need_sigmoid else x


def size_multiple(net: UNet) -> int:
    return 2**net.num_levels


def min_input_size(net: UNet) -> int:
    """The deepest features keep at least 2x2 pixels (a norm over one pixel is degenerate)."""
    return 2 ** (net.num_levels + 1)
