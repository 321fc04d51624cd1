"""The `skip` encoder-decoder of the original `models/skip.py` (REFERENCE §1.2), NHWC.

With `num_channels_skip` all zero it is the "hourglass" net.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import flax.linen as nn
import jax

from dip_jax.models import layers

IntOrList = Union[int, Sequence[int]]
StrOrList = Union[str, Sequence[str]]


def _per_level(value, num_levels: int, name: str) -> tuple:
    """A scalar is broadcast to every level; a list must have one entry per level."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_levels:
            raise ValueError(f"{name} has {len(value)} entries, expected one per level ({num_levels})")
        return tuple(value)
    return (value,) * num_levels


class Skip(nn.Module):
    """Skip / hourglass encoder-decoder; argument names are the original's, in snake case.

    Call it on z of shape (1, H, W, num_input_channels); the output is
    (1, H', W', num_output_channels), with H' = H when every level has a skip branch, and
    H' = H when H is divisible by `size_multiple(...)` otherwise.
    """

    num_input_channels: int = 2
    num_output_channels: int = 3
    num_channels_down: Sequence[int] = (16, 32, 64, 128, 128)
    num_channels_up: Sequence[int] = (16, 32, 64, 128, 128)
    num_channels_skip: Sequence[int] = (4, 4, 4, 4, 4)
    filter_size_down: IntOrList = 3
    filter_size_up: IntOrList = 3
    filter_skip_size: int = 1
    need_sigmoid: bool = True
    need_bias: bool = True
    pad: str = "zero"
    upsample_mode: StrOrList = "nearest"
    downsample_mode: StrOrList = "stride"
    act_fun: str = "LeakyReLU"
    need1x1_up: bool = True
    bn_scale_init: str = "ones"
    # Not in the original: recompute each conv -> BN -> activation unit in the backward pass
    # (jax.checkpoint) instead of keeping its conv and BN outputs, for large images or many seeds.
    remat: bool = False

    def __post_init__(self):
        n = len(self.num_channels_down)
        if not (n == len(self.num_channels_up) == len(self.num_channels_skip)):
            raise ValueError(
                "num_channels_down, num_channels_up and num_channels_skip must have equal lengths, got "
                f"{len(self.num_channels_down)}, {len(self.num_channels_up)}, {len(self.num_channels_skip)}"
            )
        if isinstance(self.filter_skip_size, (list, tuple)):
            raise ValueError("filter_skip_size must be a scalar (as in the original)")
        for name, choices in (("upsample_mode", layers.UPSAMPLE_MODES), ("downsample_mode", layers.DOWNSAMPLE_MODES)):
            for mode in _per_level(getattr(self, name), n, name):
                layers.check_choice(name, mode, choices)
        for name in ("filter_size_down", "filter_size_up"):
            _per_level(getattr(self, name), n, name)
        layers.check_choice("pad", self.pad, layers.PAD_MODES)
        layers.activation(self.act_fun)  # validates the name
        layers.check_choice("bn_scale_init", self.bn_scale_init, layers.BN_SCALE_INITS)
        super().__post_init__()

    @property
    def num_levels(self) -> int:
        return len(self.num_channels_down)

    def _block(self, x, features, kernel, stride=1, downsample_mode="stride"):
        """conv -> BN -> activation, the unit the original repeats everywhere."""
        if self.remat:
            # Lifted over the unbound method so parameter names are those of the plain net.
            # Only the unit's input is kept for the backward pass: 2 of its 3 activations are
            # recomputed, for about one extra forward pass per step.
            return nn.remat(type(self)._unit, static_argnums=(2, 3, 4, 5))(
                self, x, features, kernel, stride, downsample_mode)
        return self._unit(x, features, kernel, stride, downsample_mode)

    def _unit(self, x, features, kernel, stride=1, downsample_mode="stride"):
        x = layers.Conv(features, kernel, stride, self.need_bias, self.pad, downsample_mode)(x)
        x = layers.BatchNorm(self.bn_scale_init)(x)
        return layers.activation(self.act_fun)(x)

    def _level(self, x, i: int):
        n = self.num_levels
        k_d = _per_level(self.filter_size_down, n, "filter_size_down")[i]
        k_u = _per_level(self.filter_size_up, n, "filter_size_up")[i]
        up_mode = _per_level(self.upsample_mode, n, "upsample_mode")[i]
        down_mode = _per_level(self.downsample_mode, n, "downsample_mode")[i]

        deeper = self._block(x, self.num_channels_down[i], k_d, 2, down_mode)
        deeper = self._block(deeper, self.num_channels_down[i], k_d)
        if i < n - 1:
            deeper = self._level(deeper, i + 1)
        deeper = layers.upsample(deeper, up_mode)

        if self.num_channels_skip[i] > 0:
            skip = self._block(x, self.num_channels_skip[i], self.filter_skip_size)
            merged = layers.concat_crop([skip, deeper])
        else:
            merged = deeper
        merged = layers.BatchNorm(self.bn_scale_init)(merged)
        out = self._block(merged, self.num_channels_up[i], k_u)
        if self.need1x1_up:
            out = self._block(out, self.num_channels_up[i], 1)
        return out

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.ndim != 4 or z.shape[-1] != self.num_input_channels:
            raise ValueError(
                f"expected z of shape (N, H, W, {self.num_input_channels}), got {tuple(z.shape)}"
            )
        x = self._level(z, 0)
        fan_in = self.num_channels_up[0]
        x = nn.Conv(
            self.num_output_channels,
            (1, 1),
            use_bias=self.need_bias,
            kernel_init=layers.torch_uniform_init(fan_in),
            bias_init=layers.torch_uniform_init(fan_in),
            conv_general_dilated=layers.pointwise_conv,
            name="head",
        )(x)
        return nn.sigmoid(x) if self.need_sigmoid else x


def size_multiple(net: Skip) -> int:
    """What H and W must be divisible by for the output to have the input's size.

    A level without a skip branch returns its upsampled deeper branch uncropped, so every
    level down to the deepest skip-less one must halve exactly.
    """
    skipless = [i for i, c in enumerate(net.num_channels_skip) if c == 0]
    return 2 ** (max(skipless) + 1) if skipless else 1


def level_sizes(net: Skip, size: int) -> list[int]:
    """Spatial size at the input of each level and at the deepest features."""
    sizes = [size]
    modes = _per_level(net.downsample_mode, net.num_levels, "downsample_mode")
    for mode in modes:
        s = sizes[-1]
        sizes.append(math.ceil(s / 2) if mode == "stride" else s // 2)
    return sizes


def _reflection_fits(net: Skip, sizes: list[int]) -> bool:
    """Whether every reflection-padded conv's input is wider than its padding.

    PyTorch's ReflectionPad2d raises otherwise; jnp.pad would reflect more than once and
    compute something the original cannot. Level i's down, skip and up convs run at its
    size, its second down conv at the next level's.
    """
    if net.pad != "reflection":
        return True
    n = net.num_levels
    k_d = _per_level(net.filter_size_down, n, "filter_size_down")
    k_u = _per_level(net.filter_size_up, n, "filter_size_up")
    for i in range(n):
        kernels = [k_d[i], k_u[i]] + ([net.filter_skip_size] if net.num_channels_skip[i] else [])
        if sizes[i] <= (max(kernels) - 1) // 2 or sizes[i + 1] <= (k_d[i] - 1) // 2:
            return False
    return True


def min_input_size(net: Skip) -> int:
    """The smallest side for which every level keeps at least 2 pixels, and more than its reflection padding.

    Below this, BatchNorm over a single pixel returns its bias alone, and the reflection
    padding of the deepest convs is undefined (PyTorch raises): with 5x5 kernels, as in the
    library figure's nets, the deepest level needs 3 pixels.
    """
    size = 1
    while min(level_sizes(net, size)) < 2 or not _reflection_fits(net, level_sizes(net, size)):
        size += 1
    return size
