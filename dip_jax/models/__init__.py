"""Networks: the `skip` family and a factory for the original's named configurations."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from dip_jax.models.layers import BatchNorm, Conv, concat_crop, downsample, upsample
from dip_jax.models.pixels import PixelImage
from dip_jax.models.skip import Skip, level_sizes, min_input_size, size_multiple

__all__ = [
    "BatchNorm",
    "Conv",
    "PixelImage",
    "Skip",
    "concat_crop",
    "downsample",
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


def skip(**kwargs) -> Skip:
    """`models.skip(...)` of the original with its defaults; see `Skip` for the arguments."""
    return Skip(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


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
) -> Skip:
    """The original's `get_net` for the skip family (REFERENCE §1.3).

    `get_net(32, 'skip', 'reflection', 'bilinear')` is the standard DIP net (2,217,831
    parameters). `net_type` may also name a library-figure depth: skip_depth6/4/2.
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
    raise ValueError(f"unknown net_type {net_type!r}; expected 'skip' or one of {sorted(_LIBRARY_DEPTHS)}")


_LIBRARY_DEPTHS = {"skip_depth6": 6, "skip_depth4": 4, "skip_depth2": 2}


# Named configurations, each the exact net of a paper figure (REFERENCE §1.8, §3.2).
_NAMED = {
    "standard": lambda **kw: get_net(32, "skip", "reflection", "bilinear", **kw),
    "skip": lambda **kw: skip(**kw),
    "hourglass": lambda **kw: hourglass(**kw),
    # the pixel-space "no prior" / "TV prior" baselines of the SR prior-effect figure
    "pixels": lambda **kw: PixelImage(**kw),
    "text_inpainting": lambda **kw: get_net(32, "skip", "reflection", "nearest", skip_n11=128, **kw),
    "vase": lambda **kw: hourglass([128] * 5, num_input_channels=2, upsample_mode="nearest", pad="reflection", **kw),
    "snail": lambda **kw: skip(
        num_input_channels=3,
        num_channels_down=[8, 16, 32, 64, 128],
        num_channels_up=[8, 16, 32, 64, 128],
        num_channels_skip=[0, 0, 0, 4, 4],
        upsample_mode="bilinear",
        pad="reflection",
        **kw,
    ),
    "restoration_kate": lambda **kw: skip(
        num_input_channels=32,
        num_channels_down=[16, 32, 64, 128, 128],
        num_channels_up=[16, 32, 64, 128, 128],
        num_channels_skip=[0] * 5,
        upsample_mode="bilinear",
        downsample_mode="avg",
        pad="reflection",
        **kw,
    ),
    **{name: functools.partial(get_net, 1, name, "reflection") for name in _LIBRARY_DEPTHS},
}


def names() -> list[str]:
    return sorted(_NAMED)


def get(name: str, **overrides) -> nn.Module:
    """A network by name, with keyword overrides, e.g. `get('standard', n_channels=1)`."""
    if name not in _NAMED:
        raise ValueError(f"unknown network {name!r}; expected one of {names()}")
    return _NAMED[name](**overrides)


def num_params(net: nn.Module, input_shape) -> int:
    """Parameter count, computed from shapes only (no FLOPs spent on initialisation)."""
    variables = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros(input_shape, jnp.float32))
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(variables.get("params", {})))
