"""Networks: the original's architectures, two under-parameterised decoders, and a registry.

`get(name, **overrides)` builds a network by name with its figure's defaults (`names()` lists
them); `build(name, in_channels, out_channels, image_size, **overrides)` builds any of them for
a given code and image, with one signature for all. Every network is a
Linen module called on z (1, H, W, C) with `num_input_channels` and `num_output_channels`
attributes. What sizes it accepts is answered per architecture by `size_multiple(net)`,
`min_input_size(net)` and `code_size(net, height, width)` (single-dispatch functions: a new
architecture registers its own).
"""

from __future__ import annotations

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp

from dip_jax.models import decoders as _decoders
from dip_jax.models import resnet as _resnet
from dip_jax.models import skip as _skip
from dip_jax.models import texture_nets as _texture_nets
from dip_jax.models import unet as _unet
from dip_jax.models.decoders import ConvDecoder, DeepDecoder
from dip_jax.models.layers import BatchNorm, Conv, ConvTranspose, InstanceNorm, concat_crop, downsample, upsample
from dip_jax.models.pixels import PixelImage
from dip_jax.models.resnet import ResNet
from dip_jax.models.skip import Skip, level_sizes
from dip_jax.models.texture_nets import TextureNets
from dip_jax.models.unet import UNet

__all__ = [
    "BatchNorm",
    "Conv",
    "ConvDecoder",
    "ConvTranspose",
    "DeepDecoder",
    "InstanceNorm",
    "ResNet",
    "PixelImage",
    "Skip",
    "TextureNets",
    "UNet",
    "code_size",
    "concat_crop",
    "downsample",
    "build",
    "get",
    "get_net",
    "hourglass",
    "level_sizes",
    "min_input_size",
    "names",
    "num_params",
    "size_multiple",
    "skip",
    "upsample",
]


@functools.singledispatch
def size_multiple(net: nn.Module) -> int:
    """What the output's H and W must be divisible by for the net to make exactly that size."""
    raise TypeError(f"no size rule for {type(net).__name__}; register one with models.size_multiple.register")


@functools.singledispatch
def min_input_size(net: nn.Module) -> int:
    """The smallest output side the net handles (its coarsest features keep 2 pixels)."""
    raise TypeError(f"no size rule for {type(net).__name__}; register one with models.min_input_size.register")


@functools.singledispatch
def code_size(net: nn.Module, height: int, width: int) -> tuple[int, int]:
    """The spatial size of the code z for an output of height x width.

    The image's own size for encoder-decoders; smaller for the decoders, which upsample.
    """
    return height, width


for _cls, _multiple, _smallest in (
    (Skip, _skip.size_multiple, _skip.min_input_size),
    (UNet, _unet.size_multiple, _unet.min_input_size),
    (ResNet, _resnet.size_multiple, _resnet.min_input_size),
    (TextureNets, _texture_nets.size_multiple, _texture_nets.min_input_size),
    (DeepDecoder, _decoders.deep_decoder_size_multiple, _decoders.deep_decoder_min_input_size),
    (ConvDecoder, _decoders.conv_decoder_size_multiple, _decoders.conv_decoder_min_input_size),
):
    size_multiple.register(_cls, _multiple)
    min_input_size.register(_cls, _smallest)
size_multiple.register(PixelImage, lambda net: 1)  # no levels: any size
min_input_size.register(PixelImage, lambda net: 1)
code_size.register(DeepDecoder, _decoders.deep_decoder_code_size)
code_size.register(ConvDecoder, _decoders.conv_decoder_code_size)


def _hashable(kwargs: dict) -> dict:
    """Lists to tuples: modules must hash (compiled steps are cached on them)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def skip(**kwargs) -> Skip:
    """`models.skip(...)` of the original with its defaults; see `Skip` for the arguments."""
    return Skip(**_hashable(kwargs))


def hourglass(num_channels_down=(16, 32, 64, 128, 128), num_channels_up=None, **kwargs) -> Skip:
    """`skip` with no skip branches (REFERENCE §1.2)."""
    num_channels_up = num_channels_down if num_channels_up is None else num_channels_up
    return skip(
        num_channels_down=num_channels_down,
        num_channels_up=num_channels_up,
        num_channels_skip=[0] * len(num_channels_down),
        **kwargs,
    )


def get_net(
    input_depth: int,
    net_type: str = "skip",
    pad: str = "reflection",
    upsample_mode: str = "bilinear",
    n_channels: int = 3,
    act_fun: str = "LeakyReLU",
    skip_n33d=128,
    skip_n33u=128,
    skip_n11=4,
    num_scales: int = 5,
    downsample_mode: str = "stride",
    **kwargs,
) -> nn.Module:
    """The original's `get_net` (REFERENCE §1.3).

    `get_net(32, 'skip', 'reflection', 'bilinear')` is the standard DIP net (2,217,831
    parameters). `net_type` may also name a library-figure depth: skip_depth6/4/2, or
    'UNet', 'ResNet' (what the original's broken call meant) and 'texture_nets'.
    """

    def levels(v):
        return list(v) if isinstance(v, (list, tuple)) else [v] * num_scales

    if net_type == "skip":
        return skip(
            num_input_channels=input_depth,
            num_output_channels=n_channels,
            num_channels_down=levels(skip_n33d),
            num_channels_up=levels(skip_n33u),
            num_channels_skip=levels(skip_n11),
            upsample_mode=upsample_mode,
            downsample_mode=downsample_mode,
            need_sigmoid=True,
            need_bias=True,
            pad=pad,
            act_fun=act_fun,
            **kwargs,
        )
    if net_type in _LIBRARY_DEPTHS:
        widths = [16, 32, 64, 128, 128, 128][: _LIBRARY_DEPTHS[net_type]]
        return hourglass(
            widths,
            num_input_channels=input_depth,
            num_output_channels=n_channels,
            filter_size_down=5,
            filter_size_up=3,
            upsample_mode="nearest",
            need1x1_up=False,
            pad=pad,
            act_fun=act_fun,
            **kwargs,
        )
    if net_type == "UNet":
        return UNet(
            num_input_channels=input_depth,
            num_output_channels=3,
            feature_scale=4,
            more_layers=0,
            concat_x=False,
            upsample_mode=upsample_mode,
            pad=pad,
            norm_layer="batch",
            need_sigmoid=True,
            need_bias=True,
            **kwargs,
        )
    if net_type == "texture_nets":
        return TextureNets(num_input_channels=input_depth, ratios=(32, 16, 8, 4, 2, 1), pad=pad, **kwargs)
    if net_type == "ResNet":
        # The original's positional call ResNet(input_depth, 3, 10, 16, 1, nn.BatchNorm2d, False) puts
        # BatchNorm2d into the act_fun slot and fails; this is what it meant.
        return ResNet(
            num_input_channels=input_depth,
            num_output_channels=3,
            num_blocks=10,
            num_channels=16,
            need_residual=True,
            norm_layer="batch",
            need_sigmoid=False,
            **kwargs,
        )
    raise ValueError(
        f"unknown net_type {net_type!r}; expected 'skip', 'UNet', 'ResNet', 'texture_nets' or one of "
        f"{sorted(_LIBRARY_DEPTHS)}"
    )


_LIBRARY_DEPTHS = {"skip_depth6": 6, "skip_depth4": 4, "skip_depth2": 2}


def _with_defaults(make, **defaults):
    """`make` with keyword defaults that the caller's keywords replace (a figure's net, overridable)."""
    return lambda **kw: make(**{**defaults, **kw})


# Named configurations, each the exact net of a paper figure (REFERENCE §1.8, §3.2). Every
# argument is a default that `get(name, **overrides)` and `build` may replace.
_NAMED = {
    "standard": _with_defaults(get_net, input_depth=32, net_type="skip", upsample_mode="bilinear"),
    "skip": lambda **kw: skip(**kw),
    "hourglass": lambda **kw: hourglass(**kw),
    # the pixel-space "no prior" / "TV prior" baselines of the SR prior-effect figure
    "pixels": lambda **kw: PixelImage(**kw),
    "text_inpainting": _with_defaults(get_net, input_depth=32, net_type="skip", upsample_mode="nearest",
                                      skip_n11=128),
    "vase": _with_defaults(hourglass, num_channels_down=[128] * 5, num_input_channels=2, upsample_mode="nearest",
                           pad="reflection"),
    "snail": _with_defaults(
        skip,
        num_input_channels=3,
        num_channels_down=[8, 16, 32, 64, 128],
        num_channels_up=[8, 16, 32, 64, 128],
        num_channels_skip=[0, 0, 0, 4, 4],
        upsample_mode="bilinear",
        pad="reflection",
    ),
    "restoration_kate": _with_defaults(
        skip,
        num_input_channels=32,
        num_channels_down=[16, 32, 64, 128, 128],
        num_channels_up=[16, 32, 64, 128, 128],
        num_channels_skip=[0] * 5,
        upsample_mode="bilinear",
        downsample_mode="avg",
        pad="reflection",
    ),
    **{name: _with_defaults(get_net, input_depth=1, net_type=name) for name in _LIBRARY_DEPTHS},
    # The architectures with the original's defaults (ResNet's widths: the library figure's).
    "UNet": lambda **kw: UNet(**_hashable(kw)),
    "ResNet": lambda **kw: ResNet(**_hashable(kw)),
    "texture_nets": lambda **kw: TextureNets(**_hashable(kw)),
    "deep_decoder": lambda **kw: DeepDecoder(**_hashable(kw)),
    "conv_decoder": lambda **kw: ConvDecoder(**_hashable(kw)),
    # The library figure's UNet and ResNet (Fig. 8; REFERENCE §1.8, §3.2), 1-channel code.
    "library_unet": _with_defaults(
        lambda **kw: UNet(**_hashable(kw)),
        num_input_channels=1, feature_scale=8, more_layers=1, upsample_mode="deconv", pad="zero",
        norm_layer="instance",
    ),
    "library_resnet": _with_defaults(lambda **kw: ResNet(**_hashable(kw)), num_input_channels=1, num_blocks=8,
                                     num_channels=32),
}
# What each entry calls its channel counts: the original's get_net says input_depth and n_channels.
_GET_NET_ENTRIES = ("standard", "text_inpainting", *_LIBRARY_DEPTHS)
# Entries that make one output size, given when they are built.
_SIZED_ENTRIES = ("conv_decoder",)


def names() -> list[str]:
    return sorted(_NAMED)


def get(name: str, **overrides) -> nn.Module:
    """A network by name with its figure's defaults, e.g. `get('standard', n_channels=1)`."""
    if name not in _NAMED:
        raise ValueError(f"unknown network {name!r}; expected one of {names()}")
    return _NAMED[name](**overrides)


def build(name: str, in_channels: int, out_channels: int, image_size=None, **overrides) -> nn.Module:
    """The named net for a code of `in_channels` and an image of `out_channels` (and `image_size`, (H, W)).

    One signature for every entry of the registry: each entry's own argument names (the
    original's `get_net` says `input_depth` and `n_channels`, the architectures
    `num_input_channels` and `num_output_channels`) and its need for the image's size (the
    ConvDecoder's `output_size`) stay here. `overrides` replace the figure's other defaults;
    an argument the architecture does not take is a ValueError naming it.
    """
    if name not in _NAMED:
        raise ValueError(f"unknown network {name!r}; expected one of {names()}")
    in_arg, out_arg = ("input_depth", "n_channels") if name in _GET_NET_ENTRIES else (
        "num_input_channels", "num_output_channels")
    kwargs = {in_arg: in_channels, out_arg: out_channels}
    if name in _SIZED_ENTRIES:
        if image_size is None:
            raise ValueError(f"the net {name!r} makes one output size: give the image's size")
        kwargs["output_size"] = tuple(image_size)
    try:
        return get(name, **{**kwargs, **overrides})
    except TypeError as e:  # an override the architecture does not take
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        raise ValueError(f"the net {name!r} does not take the argument {unknown[1] if unknown else e!r}") from None


def num_params(net: nn.Module, input_shape) -> int:
    """Parameter count, computed from shapes only (no FLOPs spent on initialisation)."""
    variables = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros(input_shape, jnp.float32))
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(variables.get("params", {})))
