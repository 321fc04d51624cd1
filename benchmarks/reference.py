"""The original PyTorch code beside dip-jax: its packages imported from a checkout, and weights
carried between its `state_dict` names and dip-jax's Flax parameter trees.

The mapping works on plain dicts of numpy arrays and never imports torch, so the tests cover
it without the optional dependency. `layer_plan(net)` lists, for a dip-jax network, every
layer with parameters as a `Layer`: the Flax module it is (named as Flax's auto-naming names
it, in the order dip-jax creates it) and the module of the original's network built with the
same arguments that holds the same weights (named as PyTorch names it). The two orders
differ (the skip net's skip branch is registered before its deeper branch in the original
and created after it here), hence one plan per architecture, written from both codes.

Layouts: conv weights are (out, in, kh, kw) in PyTorch and (kh, kw, in, out) in Flax;
transposed convs are (in, out, kh, kw) there and (kh, kw, in, out) here (the same taps,
unflipped: `layers.conv_transpose` follows PyTorch's scatter definition); a norm's
weight/bias are Flax's scale/bias.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import sys
from typing import Mapping

import numpy as np

from dip_jax.models import ResNet, Skip, TextureNets, UNet

CONV, CONV_TRANSPOSE, NORM = "conv", "conv_transpose", "norm"

# state_dict entries with no Flax counterpart: BatchNorm's running statistics (the original
# never leaves train mode, so they are never read) and the fixed Lanczos kernel that the
# original's `Downsampler` stores as a parameter (a constant here, REFERENCE §6.13).
BATCHNORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
IGNORED_SUFFIXES = BATCHNORM_BUFFERS + ("downsampler_.weight", "downsampler_.bias")


def import_reference(reference_dir: str, module: str = "models"):
    """The original's `module` ('models', 'models.downsampler', ...), imported unchanged from a checkout."""
    if reference_dir not in sys.path:
        sys.path.insert(0, reference_dir)
    return importlib.import_module(module)


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer with parameters, in both trees.

    flax_path: the module's path in the Flax params ('Conv_3', 'conv') or ('head',).
    torch_prefix: its module in the original's state_dict; the tensors are
      `torch_prefix + '.weight'` and, if it has one, `+ '.bias'`.
    kind: CONV, CONV_TRANSPOSE or NORM.
    bias_cancelled: what its bias (a conv's bias, a norm's beta) adds is a per-channel
      constant that reaches a norm only through layers that keep constants constant
      (resampling, a 1x1 or reflection-padded conv); the norm removes it, so the bias's
      gradient is 0 in exact arithmetic and both implementations return rounding noise.
    """

    flax_path: tuple
    torch_prefix: str
    kind: str
    bias_cancelled: bool = False


class _Plan:
    """Collects `Layer`s, naming Flax modules as Flax's auto-naming does (a counter per class)."""

    def __init__(self, conv_bias: bool = True):
        self.layers = []
        self.conv_bias = conv_bias  # whether the convs have biases (need_bias)
        self._counts = collections.Counter()

    def _name(self, cls: str) -> str:
        name = f"{cls}_{self._counts[cls]}"
        self._counts[cls] += 1
        return name

    def conv(self, prefix: str, before_norm: bool, bias: bool | None = None):
        """A `layers.Conv` (its nn.Conv is the child 'conv')."""
        bias = self.conv_bias if bias is None else bias
        self.layers.append(Layer((self._name("Conv"), "conv"), prefix, CONV, before_norm and bias))

    def conv_transpose(self, prefix: str):
        self.layers.append(Layer((self._name("ConvTranspose"),), prefix, CONV_TRANSPOSE))

    def norm(self, prefix: str, cls: str = "BatchNorm", before_norm: bool = False):
        self.layers.append(Layer((self._name(cls),), prefix, NORM, before_norm))


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _common_conv(prefix: str, pad: str) -> str:
    """The Conv2d inside the original's `common.conv`: Sequential([ReflectionPad2d,] Conv2d[, downsampler])."""
    return _join(prefix, "1" if pad == "reflection" else "0")


@functools.singledispatch
def layer_plan(net) -> list[Layer]:
    """Every layer with parameters of `net`, in dip-jax's creation order (see the module doc)."""
    raise TypeError(f"no mapping to the original's state_dict for {type(net).__name__}")


@layer_plan.register
def _skip_plan(net: Skip) -> list[Layer]:
    # The original (models/skip.py) nests one Sequential per level; `Module.add` names
    # children '1', '2', ... Level container: 1 = Concat(0: skip, 1: deeper) or deeper,
    # 2 = merge BN, 3 = up conv, 4 = BN, (5 act), 6 = 1x1 conv, 7 = BN. Deeper: 1 = down
    # conv, 2 = BN, 4 = conv, 5 = BN, 7 = the next level's container, then the upsampling.
    plan = _Plan(net.need_bias)
    n = net.num_levels

    def level(i: int, container: str):
        has_skip = net.num_channels_skip[i] > 0
        deeper = _join(container, "1", "1" if has_skip else "")
        plan.conv(_common_conv(_join(deeper, "1"), net.pad), True)
        plan.norm(_join(deeper, "2"))
        plan.conv(_common_conv(_join(deeper, "4"), net.pad), True)
        plan.norm(_join(deeper, "5"))
        if i < n - 1:
            level(i + 1, _join(deeper, "7"))
        if has_skip:
            plan.conv(_common_conv(_join(container, "1", "0", "1"), net.pad), True)
            plan.norm(_join(container, "1", "0", "2"))
        # the merge BN feeds the up conv, then its BN
        k_u = net.filter_size_up[i] if isinstance(net.filter_size_up, (list, tuple)) else net.filter_size_up
        plan.norm(_join(container, "2"), before_norm=net.pad == "reflection" or k_u == 1)
        plan.conv(_common_conv(_join(container, "3"), net.pad), True)
        plan.norm(_join(container, "4"))
        if net.need1x1_up:
            plan.conv(_common_conv(_join(container, "6"), net.pad), True)
            plan.norm(_join(container, "7"))

    level(0, "")
    head = "9" if net.need1x1_up else "6"  # after the top level's 8 (or 5) modules
    plan.layers.append(Layer(("head",), _common_conv(head, net.pad), CONV))
    return plan.layers


@layer_plan.register
def _unet_plan(net: UNet) -> list[Layer]:
    # models/unet.py: unetConv2 = conv1, conv2, each Sequential(common.conv, [norm,] ReLU);
    # unetDown.conv is one; unetUp.up is a ConvTranspose2d or Sequential(Upsample, common.conv),
    # unetUp.conv an unnormalised unetConv2. InstanceNorm2d (the default) has no parameters.
    plan = _Plan(net.need_bias)
    norm_cls = {"batch": "BatchNorm", "instance": None, "none": None}[net.norm_layer]

    def conv_pair(prefix: str, normalised: bool):
        for half in ("conv1", "conv2"):
            plan.conv(_common_conv(_join(prefix, half, "0"), net.pad), normalised and net.norm_layer != "none")
            if normalised and norm_cls:
                plan.norm(_join(prefix, half, "1"), norm_cls)

    def up(prefix: str):
        if net.upsample_mode == "deconv":
            plan.conv_transpose(_join(prefix, "up"))
        else:
            plan.conv(_common_conv(_join(prefix, "up", "1"), net.pad), False)
        conv_pair(_join(prefix, "conv"), False)

    conv_pair("start", True)
    for k in range(1, 5):
        conv_pair(f"down{k}.conv", True)
    for m in range(net.more_layers):
        conv_pair(f"more_downs.{m}.conv", True)
    for m in reversed(range(net.more_layers)):  # the deepest extra level is more_ups[-1]
        up(f"more_ups.{m}")
    for k in (4, 3, 2, 1):
        up(f"up{k}")
    plan.conv(_common_conv("final.0" if net.need_sigmoid else "final", net.pad), False)
    return plan.layers


@layer_plan.register
def _resnet_plan(net: ResNet) -> list[Layer]:
    # models/resnet.py: model = [common.conv, act, num_blocks x ResidualSequential(conv, norm,
    # act, conv, norm), Conv2d, norm, common.conv, Sigmoid]; the blocks' convs are bare Conv2d.
    plan = _Plan()
    norm_cls = {"batch": "BatchNorm", "instance": "InstanceNorm"}[net.norm_layer]
    b = net.num_blocks
    plan.conv(_common_conv("model.0", net.pad), False)
    for i in range(b):
        block = f"model.{2 + i}"
        plan.conv(f"{block}.0", True, bias=False)
        plan.norm(f"{block}.1", norm_cls)
        plan.conv(f"{block}.3", True, bias=False)
        plan.norm(f"{block}.4", norm_cls)
    plan.conv(f"model.{2 + b}", True)
    plan.norm(f"model.{3 + b}", norm_cls)
    plan.conv(_common_conv(f"model.{4 + b}", net.pad), False)
    return plan.layers


@layer_plan.register
def _texture_nets_plan(net: TextureNets) -> list[Layer]:
    # models/texture_nets.py: branch i is a Sequential (1 = AvgPool, 2/5/8 = convs, 3/6/9 = BN,
    # 11 = Upsample for the coarsest, else its pre-merge BN). Merge i is a new Sequential:
    # 1 = Concat(0: merge i-1, which gets its pre-merge BN appended as 12; 1: branch i),
    # 2/5/8 = convs, 3/6/9 = BN, 11 = Upsample or the output conv. Its own conv helper is a
    # bare Conv2d for zero padding, Sequential(ReflectionPad2d, Conv2d) for reflection.
    plan = _Plan()
    levels = len(net.ratios)

    def conv(prefix: str, before_norm: bool = True):
        plan.conv(_join(prefix, "1" if net.pad == "reflection" else ""), before_norm)

    def three_blocks(seq: str):
        for c, b in (("2", "3"), ("5", "6"), ("8", "9")):
            conv(_join(seq, c))
            plan.norm(_join(seq, b))

    def merge(i: int) -> str:  # the last merge is the whole net; each one holds the previous at 1.0
        return ".".join(["1.0"] * (levels - 1 - i))

    three_blocks(merge(0))  # the coarsest branch is merge 0 itself
    for i in range(1, levels):
        branch = _join(merge(i), "1.1")
        three_blocks(branch)
        # the pre-merge BNs feed the merge's first conv (3x3), then its BN
        plan.norm(_join(branch, "11"), before_norm=net.pad == "reflection")
        plan.norm(_join(merge(i - 1), "12"), before_norm=net.pad == "reflection")
        three_blocks(merge(i))
    conv(_join(merge(levels - 1), "11"), before_norm=False)
    return plan.layers


# axes of a PyTorch weight in the order of the Flax one's
_TO_FLAX_AXES = {CONV: (2, 3, 1, 0), CONV_TRANSPOSE: (2, 3, 0, 1), NORM: (0,)}


def _weight_to_flax(kind: str, w: np.ndarray) -> np.ndarray:
    return np.transpose(w, _TO_FLAX_AXES[kind])


def _weight_to_torch(kind: str, w: np.ndarray) -> np.ndarray:
    return np.transpose(w, np.argsort(_TO_FLAX_AXES[kind]))


def _flax_names(kind: str) -> tuple[str, str]:
    return ("scale", "bias") if kind == NORM else ("kernel", "bias")


def is_ignored(name: str) -> bool:
    return name.endswith(IGNORED_SUFFIXES)


def to_flax(net, tensors: Mapping[str, np.ndarray]) -> dict:
    """The Flax params of `net` from a state_dict-shaped dict (a state_dict, or its gradients).

    Raises a KeyError for a layer the dict lacks, and a ValueError for an entry that no
    layer takes (other than the `IGNORED_SUFFIXES`).
    """
    params: dict = {}
    used = set()
    for layer in layer_plan(net):
        weight_name, bias_name = _flax_names(layer.kind)
        node = params
        for key in layer.flax_path:
            node = node.setdefault(key, {})
        if node:
            raise ValueError(f"two layers map to the Flax module {layer.flax_path}")
        w = f"{layer.torch_prefix}.weight"
        if w not in tensors:
            raise KeyError(f"{w} (for Flax {'/'.join(layer.flax_path)}) is not in the state_dict")
        node[weight_name] = _weight_to_flax(layer.kind, np.asarray(tensors[w]))
        used.add(w)
        b = f"{layer.torch_prefix}.bias"
        if b in tensors:
            node[bias_name] = np.asarray(tensors[b])
            used.add(b)
    unused = sorted(k for k in tensors if k not in used and not is_ignored(k))
    if unused:
        raise ValueError(f"state_dict entries with no Flax counterpart: {unused}")
    return params


def to_torch(net, params: Mapping) -> dict[str, np.ndarray]:
    """The inverse of `to_flax`: state_dict names to numpy arrays (no BatchNorm buffers)."""
    tensors = {}
    for layer in layer_plan(net):
        weight_name, bias_name = _flax_names(layer.kind)
        node = params
        for key in layer.flax_path:
            node = node[key]
        tensors[f"{layer.torch_prefix}.weight"] = _weight_to_torch(layer.kind, np.asarray(node[weight_name]))
        if bias_name in node:
            tensors[f"{layer.torch_prefix}.bias"] = np.asarray(node[bias_name])
    return tensors


def cancelled_biases(net) -> set[tuple]:
    """Flax paths of the biases (conv biases, norm betas) whose gradient is 0 in exact arithmetic.

    See `Layer.bias_cancelled`.
    """
    return {layer.flax_path + ("bias",) for layer in layer_plan(net) if layer.bias_cancelled}
