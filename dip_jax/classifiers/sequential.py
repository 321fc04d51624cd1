"""AlexNet (the Caffe variant the original DIP uses) and VGG-16/19 in Flax, from a weights file.

Both are chains of named layers, with the original's names (its notebooks list them):
AlexNet `conv1 relu1 norm1 pool1 conv2 relu2 norm2 pool2 conv3 relu3 conv4 relu4 conv5 relu5
pool5 torch_view fc6 relu6 drop6 fc7 relu7 drop7 fc8 softmax` and VGG `conv1_1 relu1_1 ...
pool5 torch_view fc6 relu6 drop6 fc7 relu7 drop7 fc8`. A conv or fc layer's activations are
taken before its ReLU, as the original's forward hooks on those modules see them; dropout is
the identity (inference), and `torch_view` flattens in PyTorch's (C, H, W) order.

AlexNet is BVLC's Caffe AlexNet: 96/256/384/384/256 channels, kernels 11 (stride 4), 5, 3,
3, 3, two-tower groups on conv2, conv4 and conv5, local response normalisation (size 5,
alpha 1e-4, beta 0.75, k 1, across channels) after relu1 and relu2, 3x3 stride-2 max pooling,
fc6/fc7 4096 and fc8 1000; 227x227 inputs. Whether conv2/4/5 are grouped is read from the
weights' shapes (a converter may have expanded them into dense, block-diagonal weights).
Caffe's pooling rounds its output size up ("ceil mode"); so does ours for the Caffe nets,
which is what lets the original's feature-inversion notebook feed AlexNet 224x224 images
(REFERENCE §6.16): with ceil mode 224 and 227 both reach a 6x6 pool5.

VGG-16/19 (Simonyan & Zisserman): 3x3 convs with padding 1, 2x2 max pooling, fc6/fc7 4096 and
fc8 1000; 224x224 inputs. `vgg16_caffe`/`vgg19_caffe` take the Caffe-converted weights the
original downloads (preprocessing: BGR, x255, minus the mean), `vgg16`/`vgg19` torchvision's
(RGB standardised with torchvision's mean and std; floor-mode pooling, as torchvision's; its
adaptive average pooling to 7x7 before fc6 is the identity at 224x224 and is left out).

Weights come from a `.pth` the user gives, in any of these layouts (read by `pth`, no torch):
- the layer names above (`conv1.weight`, `fc8.bias`): the original's `vgg19-caffe-py3.pth`
  state dict and its pickled AlexNet model `alexnet-torch_py3.pth`;
- torchvision's (`features.0.weight` ... `classifier.6.bias`);
- a pickled `nn.Sequential` with numbered children (`0.weight` ...): the original's
  `vgg16-caffe-py3.pth`.
For the numbered layouts the weights are assigned to the conv layers, then the fc layers, in
numeric order of their names; every shape is checked against the architecture.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dip_jax.classifiers import pth
from dip_jax.classifiers.base import (
    CAFFE,
    TORCHVISION,
    Classifier,
    Preprocessing,
    check_variables,
    conv_kernel,
    dense_kernel,
    to_device,
)

# Caffe AlexNet's local response normalisation.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 1.0


class Layer(NamedTuple):
    """One named layer; `features`, `kernel`, `stride`, `padding` and `groups` as the kind needs."""

    kind: str  # conv, relu, lrn, maxpool, flatten, fc, dropout, softmax
    name: str
    features: int = 0
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    groups: int = 1


def local_response_norm(x: jax.Array, size: int = LRN_SIZE, alpha: float = LRN_ALPHA, beta: float = LRN_BETA,
                        k: float = LRN_K) -> jax.Array:
    """x / (k + alpha / size * sum of x^2 over `size` neighbouring channels)^beta (Caffe, torch's
    LocalResponseNorm): the window is zero-padded, size // 2 channels below and (size - 1) // 2 above."""
    sums = jax.lax.reduce_window(
        jnp.square(x), 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1),
        ((0, 0), (0, 0), (0, 0), (size // 2, (size - 1) // 2)),
    )
    return x / jnp.power(k + (alpha / size) * sums, beta)


def _pool_output(size: int, window: int, stride: int, ceil_mode: bool) -> int:
    if not ceil_mode:
        return (size - window) // stride + 1
    out = -(-(size - window) // stride) + 1
    if (out - 1) * stride >= size:  # the last window must start inside the input (Caffe, PyTorch)
        out -= 1
    return out


def max_pool(x: jax.Array, window: int, stride: int, ceil_mode: bool) -> jax.Array:
    """Max pooling without padding; `ceil_mode` rounds the output size up, padding the high side with -inf."""
    _, h, w, _ = x.shape
    oh, ow = (_pool_output(n, window, stride, ceil_mode) for n in (h, w))
    ph, pw = max(0, (oh - 1) * stride + window - h), max(0, (ow - 1) * stride + window - w)
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=-jnp.inf)
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding="VALID")


class SequentialNet(nn.Module):
    """A chain of `Layer`s on a preprocessed NHWC batch; `layer` stops at that layer's output."""

    layers: tuple
    logits_layer: str = "fc8"
    ceil_mode: bool = True

    @property
    def layer_names(self) -> tuple:
        return tuple(spec.name for spec in self.layers)

    @nn.compact
    def __call__(self, x, layer: Optional[str] = None):
        last = layer or self.logits_layer
        if last not in self.layer_names:
            raise ValueError(f"unknown layer {last!r}; the layers are {', '.join(self.layer_names)}")
        for spec in self.layers:
            if spec.kind == "conv":
                pad = ((spec.padding, spec.padding), (spec.padding, spec.padding))
                x = nn.Conv(spec.features, (spec.kernel, spec.kernel), strides=spec.stride, padding=pad,
                            feature_group_count=spec.groups, name=spec.name)(x)
            elif spec.kind == "relu":
                x = nn.relu(x)
            elif spec.kind == "lrn":
                x = local_response_norm(x)
            elif spec.kind == "maxpool":
                x = max_pool(x, spec.kernel, spec.stride, self.ceil_mode)
            elif spec.kind == "flatten":  # PyTorch's x.view(N, -1) on NCHW
                x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
            elif spec.kind == "fc":
                x = nn.Dense(spec.features, name=spec.name)(x)
            elif spec.kind == "softmax":
                x = jax.nn.softmax(x, axis=-1)
            elif spec.kind != "dropout":  # dropout: the identity at inference
                raise ValueError(f"unknown layer kind {spec.kind!r}")
            if spec.name == last:
                return x
        return x


def _classifier_layers(fc_width: int = 4096, num_classes: int = 1000) -> tuple:
    return (
        Layer("flatten", "torch_view"),
        Layer("fc", "fc6", fc_width), Layer("relu", "relu6"), Layer("dropout", "drop6"),
        Layer("fc", "fc7", fc_width), Layer("relu", "relu7"), Layer("dropout", "drop7"),
        Layer("fc", "fc8", num_classes),
    )


ALEXNET_WIDTHS = (96, 256, 384, 384, 256)
ALEXNET_GROUPS = (1, 2, 1, 2, 2)


def alexnet_layers(groups: tuple = ALEXNET_GROUPS, widths: tuple = ALEXNET_WIDTHS, fc_width: int = 4096,
                   num_classes: int = 1000) -> tuple:
    """Caffe AlexNet's layers; `groups` and `widths` of conv1..conv5 (other widths make small test nets)."""
    (g1, g2, g3, g4, g5), (c1, c2, c3, c4, c5) = groups, widths
    return (
        Layer("conv", "conv1", c1, 11, 4, 0, g1), Layer("relu", "relu1"), Layer("lrn", "norm1"),
        Layer("maxpool", "pool1", kernel=3, stride=2),
        Layer("conv", "conv2", c2, 5, 1, 2, g2), Layer("relu", "relu2"), Layer("lrn", "norm2"),
        Layer("maxpool", "pool2", kernel=3, stride=2),
        Layer("conv", "conv3", c3, 3, 1, 1, g3), Layer("relu", "relu3"),
        Layer("conv", "conv4", c4, 3, 1, 1, g4), Layer("relu", "relu4"),
        Layer("conv", "conv5", c5, 3, 1, 1, g5), Layer("relu", "relu5"),
        Layer("maxpool", "pool5", kernel=3, stride=2),
        *_classifier_layers(fc_width, num_classes),
        Layer("softmax", "softmax"),
    )


VGG_STAGES = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)


def vgg_layers(depth: int, widths: tuple = VGG_WIDTHS, fc_width: int = 4096, num_classes: int = 1000) -> tuple:
    """VGG-16 or VGG-19's layers with the original's names (conv{stage}_{i}, relu..., pool{stage})."""
    if depth not in VGG_STAGES:
        raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
    layers = []
    for stage, (repeats, width) in enumerate(zip(VGG_STAGES[depth], widths, strict=True), start=1):
        for i in range(1, repeats + 1):
            layers += [Layer("conv", f"conv{stage}_{i}", width, 3, 1, 1), Layer("relu", f"relu{stage}_{i}")]
        layers.append(Layer("maxpool", f"pool{stage}", kernel=2, stride=2))
    return (*layers, *_classifier_layers(fc_width, num_classes))


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def layer_weights(state_dict, layers: tuple) -> dict:
    """layer name -> (weight, bias) in PyTorch layout, from a state dict in any layout of the module doc."""
    named = [spec.name for spec in layers if spec.kind in ("conv", "fc")]
    if all(f"{name}.weight" in state_dict for name in named):
        pairs = {name: (state_dict[f"{name}.weight"], state_dict.get(f"{name}.bias")) for name in named}
        used = {f"{name}.{p}" for name in named for p in ("weight", "bias")}
    else:  # numbered layouts: convs then fcs, each in numeric order of their names
        prefixes = sorted((k[: -len(".weight")] for k in state_dict if k.endswith(".weight")), key=_natural_key)
        convs = [p for p in prefixes if np.ndim(state_dict[p + ".weight"]) == 4]
        fcs = [p for p in prefixes if np.ndim(state_dict[p + ".weight"]) == 2]
        conv_names = [spec.name for spec in layers if spec.kind == "conv"]
        fc_names = [spec.name for spec in layers if spec.kind == "fc"]
        if len(convs) != len(conv_names) or len(fcs) != len(fc_names):
            raise ValueError(f"the weights have {len(convs)} conv and {len(fcs)} linear layers; the net has "
                             f"{len(conv_names)} and {len(fc_names)} (layer names: {', '.join(named)})")
        order = dict(zip(conv_names + fc_names, convs + fcs, strict=True))
        pairs = {name: (state_dict[p + ".weight"], state_dict.get(p + ".bias")) for name, p in order.items()}
        used = {f"{p}.{s}" for p in convs + fcs for s in ("weight", "bias")}
    unexpected = sorted(set(state_dict) - used)
    if unexpected:
        raise ValueError(f"unexpected entries in the weights: {', '.join(unexpected[:8])}")
    missing = [name for name, (_, bias) in pairs.items() if bias is None]
    if missing:
        raise ValueError(f"no bias for {', '.join(missing)}")
    return pairs


def infer_groups(layers: tuple, pairs: dict, in_channels: int = 3) -> tuple:
    """`layers` with each conv's groups set to what its weight's input width implies."""
    out = []
    for spec in layers:
        if spec.kind == "conv":
            per_group = np.shape(pairs[spec.name][0])[1]
            if per_group <= 0 or in_channels % per_group:
                raise ValueError(f"{spec.name}: a weight of input width {per_group} does not divide "
                                 f"the {in_channels} input channels")
            spec = spec._replace(groups=in_channels // per_group)
            in_channels = spec.features
        out.append(spec)
    return tuple(out)


def variables_from_pairs(layers: tuple, pairs: dict) -> dict:
    params = {}
    for spec in layers:
        if spec.kind in ("conv", "fc"):
            weight, bias = pairs[spec.name]
            weight = np.asarray(weight, np.float32)
            kernel = conv_kernel(weight) if spec.kind == "conv" else dense_kernel(weight)
            params[spec.name] = {"kernel": kernel, "bias": np.asarray(bias, np.float32)}
    return {"params": params}


def load_sequential(path: str, layers: tuple, *, name: str, preprocessing: Preprocessing, input_size: tuple,
                    ceil_mode: bool, infer_conv_groups: bool = False) -> Classifier:
    """A `Classifier` of `layers` with the weights in `path` (any layout of the module doc)."""
    pairs = layer_weights(pth.load_state_dict(path), layers)
    if infer_conv_groups:
        layers = infer_groups(layers, pairs)
    net = SequentialNet(layers=layers, ceil_mode=ceil_mode)
    variables = variables_from_pairs(layers, pairs)
    check_variables(net, variables, (1, *input_size, 3), name)
    return Classifier(net=net, variables=to_device(variables), preprocessing=preprocessing,
                      input_size=tuple(input_size), name=name)


def alexnet_caffe(path: str) -> Classifier:
    """Caffe AlexNet from a `.pth` (the original's `alexnet-torch_py3.pth` or a state dict with its names)."""
    return load_sequential(path, alexnet_layers(), name="alexnet_caffe", preprocessing=CAFFE,
                           input_size=(227, 227), ceil_mode=True, infer_conv_groups=True)


def vgg_caffe(path: str, depth: int) -> Classifier:
    """VGG-16/19 with Caffe-converted weights (the original's files) and Caffe preprocessing."""
    return load_sequential(path, vgg_layers(depth), name=f"vgg{depth}_caffe", preprocessing=CAFFE,
                           input_size=(224, 224), ceil_mode=True)


def vgg_torchvision(path: str, depth: int) -> Classifier:
    """VGG-16/19 with torchvision's weights (a `state_dict()` .pth) and torchvision's preprocessing."""
    return load_sequential(path, vgg_layers(depth), name=f"vgg{depth}", preprocessing=TORCHVISION,
                           input_size=(224, 224), ceil_mode=False)
