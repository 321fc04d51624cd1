"""Under-parameterised decoders: the Deep Decoder and the ConvDecoder, NHWC.

Both map a small fixed code to the image and, having fewer weights than the image has
pixels (Deep Decoder) or few channels (ConvDecoder), fit noise slowly enough to denoise
without early stopping. Built from the papers' descriptions:

- Deep Decoder (Heckel & Hand, ICLR 2019): every layer is a 1x1 conv (no bias), bilinear
  x2 upsampling, ReLU and channel normalisation (each channel by its own spatial mean
  and variance, then a learned scale and shift); no spatial convolutions at all. The last
  layer does not upsample; a 1x1 conv and a sigmoid give the image.
- ConvDecoder (Darestani & Heckel, 2020): every layer resamples to an explicit size (so
  any H x W works), then a 3x3 conv (no bias), ReLU and channel normalisation; one more
  such conv layer at the output size, and a 1x1 conv (and sigmoid) to the image. The
  intermediate sizes grow geometrically from the code's size to the output size.

Channel normalisation with a batch of one is `layers.BatchNorm`. Weights use the
PyTorch init of the rest of the package.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax

from dip_jax.models import layers


def _check_z(z, channels: int) -> None:
    if z.ndim != 4 or z.shape[-1] != channels:
        raise ValueError(f"expected z of shape (N, H, W, {channels}), got {tuple(z.shape)}")


class DeepDecoder(nn.Module):
    """Deep Decoder: z (1, h, w, C) -> (1, h * 2^L, w * 2^L, out), L = len(num_channels) - 1.

    `num_channels[i]` is the width of layer i. The default, 6 layers of 128 channels, has
    6 * (128 * 128 + 2 * 128) + 128 * 3 = 100,224 parameters: fewer than the 262,144 pixels
    of a 512 x 512 image, and independent of the image size.
    """

    num_input_channels: int = 128
    num_output_channels: int = 3
    num_channels: Sequence[int] = (128,) * 6
    upsample_mode: str = "bilinear"
    act_fun: str = "ReLU"
    need_sigmoid: bool = True
    bn_scale_init: str = "ones"

    def __post_init__(self):
        if len(self.num_channels) < 1:
            raise ValueError("num_channels needs at least one layer")
        layers.check_choice("upsample_mode", self.upsample_mode, layers.UPSAMPLE_MODES)
        layers.activation(self.act_fun)  # validates the name
        super().__post_init__()

    @property
    def num_levels(self) -> int:
        """The number of x2 upsamplings."""
        return len(self.num_channels) - 1

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        _check_z(z, self.num_input_channels)
        x = z
        for i, width in enumerate(self.num_channels):
            # The 1x1 conv commutes with the upsampling (both linear), so it runs first, on fewer pixels.
            x = layers.Conv(width, 1, use_bias=False)(x)
            if i < self.num_levels:
                x = layers.upsample(x, self.upsample_mode)
            x = layers.activation(self.act_fun)(x)
            x = layers.BatchNorm(self.bn_scale_init)(x)
        x = layers.Conv(self.num_output_channels, 1, use_bias=False)(x)
        return nn.sigmoid(x) if self.need_sigmoid else x


class ConvDecoder(nn.Module):
    """ConvDecoder: z (1, h, w, C) -> (1, *output_size, out) for any output size.

    `output_size` must be set (restore and the CLI take it from the image). `input_size` is
    the code's spatial size, which `dip_jax.restore` makes. `num_layers` counts the
    resampling layers plus the last conv layer, as the paper does.
    """

    num_input_channels: int = 64
    num_output_channels: int = 3
    output_size: Optional[tuple[int, int]] = None
    input_size: tuple[int, int] = (16, 16)
    num_layers: int = 6
    num_channels: int = 64
    kernel_size: int = 3
    upsample_mode: str = "bilinear"
    act_fun: str = "ReLU"
    need_last: bool = True
    need_sigmoid: bool = True
    need_bias: bool = False
    pad: str = "zero"
    bn_scale_init: str = "ones"

    def __post_init__(self):
        if self.num_layers < 2:
            raise ValueError(f"num_layers must be >= 2, got {self.num_layers}")
        layers.check_choice("upsample_mode", self.upsample_mode, layers.UPSAMPLE_MODES)
        layers.check_choice("pad", self.pad, layers.PAD_MODES)
        layers.activation(self.act_fun)  # validates the name
        super().__post_init__()

    @property
    def num_levels(self) -> int:
        return self.num_layers - 1

    def _block(self, x):
        x = layers.Conv(self.num_channels, self.kernel_size, use_bias=self.need_bias, pad=self.pad)(x)
        x = layers.activation(self.act_fun)(x)
        return layers.BatchNorm(self.bn_scale_init)(x)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        _check_z(z, self.num_input_channels)
        if self.output_size is None:
            raise ValueError("ConvDecoder needs output_size=(H, W), the size of the image it makes")
        x = z
        for size in hidden_sizes(z.shape[1:3], self.output_size, self.num_layers):
            x = self._block(layers.resize(x, size, self.upsample_mode))
        if self.need_last:
            x = self._block(x)
        x = layers.Conv(self.num_output_channels, 1, use_bias=self.need_bias)(x)
        return nn.sigmoid(x) if self.need_sigmoid else x


def hidden_sizes(input_size, output_size, num_layers: int) -> list[tuple[int, int]]:
    """The sizes the layers resample to: geometric from the input's, the last the output's.

    Layer n (1-based) of the first num_layers - 2 has size ceil(in * s^n) per axis with
    s = (out / in)^(1 / (num_layers - 1)); the (num_layers - 1)-th has the output's size.
    """
    scales = [(o / i) ** (1.0 / (num_layers - 1)) for i, o in zip(input_size, output_size, strict=True)]
    sizes = [
        tuple(int(math.ceil(s**n * i)) for s, i in zip(scales, input_size, strict=True))
        for n in range(1, num_layers - 1)
    ]
    return sizes + [tuple(output_size)]


def deep_decoder_size_multiple(net: DeepDecoder) -> int:
    return 2**net.num_levels


def deep_decoder_min_input_size(net: DeepDecoder) -> int:
    """The code keeps at least 2x2 pixels (a norm over one pixel is degenerate)."""
    return 2 ** (net.num_levels + 1)


def deep_decoder_code_size(net: DeepDecoder, height: int, width: int) -> tuple[int, int]:
    m = deep_decoder_size_multiple(net)
    if height % m or width % m:
        raise ValueError(f"the Deep Decoder makes sizes divisible by {m}, got {height}x{width}")
    return height // m, width // m


def conv_decoder_size_multiple(net: ConvDecoder) -> int:
    return 1


def conv_decoder_min_input_size(net: ConvDecoder) -> int:
    return 2


def conv_decoder_code_size(net: ConvDecoder, height: int, width: int) -> tuple[int, int]:
    if net.output_size is None or tuple(net.output_size) != (height, width):
        raise ValueError(
            f"this ConvDecoder makes images of size {net.output_size}, not {height}x{width}; "
            f"build it with output_size=({height}, {width})"
        )
    return tuple(net.input_size)
