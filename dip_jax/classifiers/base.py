"""A pretrained classifier as a fixed feature map: the net, its weights and its preprocessing.

`Classifier` is a pytree (`flax.struct.dataclass`): the weights are its leaves, so an operator
holding one can be passed into jitted and vmapped functions, while the Linen module, the
preprocessing and the input size are static (hashable) fields.

Every net here is a Linen module called as `net.apply(variables, x, layer=name)` on a
preprocessed NHWC batch; it computes only up to the layer `name` and returns that layer's
activations: (N, H, W, C) for convolutional layers, (N, C) after the flattening. Its
`layer_names` lists the names in order and `logits_layer` names the class scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """[0, 1] RGB -> the net's input: flip to BGR if `bgr`, times `scale`, minus `mean`, over `std`.

    `mean` and `std` are per channel in the net's channel order (BGR when `bgr`).
    """

    scale: float = 1.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    bgr: bool = False

    def __call__(self, images: jax.Array) -> jax.Array:
        x = images[..., ::-1] if self.bgr else images
        mean = jnp.asarray(self.mean, x.dtype)
        std = jnp.asarray(self.std, x.dtype)
        return (x * self.scale - mean) / std


# The Caffe-trained nets (the original's AlexNet and VGG): BGR on [0, 255] minus the ImageNet
# mean in BGR order, no division (REFERENCE §3.2 notes).
CAFFE = Preprocessing(scale=255.0, mean=(103.939, 116.779, 123.68), bgr=True)
# torchvision's ImageNet models: RGB on [0, 1], standardised per channel.
TORCHVISION = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@flax.struct.dataclass
class Classifier:
    """A Linen classifier with its weights and preprocessing; images are [0, 1] RGB, HWC or NHWC."""

    net: nn.Module = flax.struct.field(pytree_node=False)
    variables: Any  # {'params': ..., possibly 'batch_stats': ...}
    preprocessing: Preprocessing = flax.struct.field(pytree_node=False)
    input_size: tuple = flax.struct.field(pytree_node=False)  # (height, width) the net was trained on
    name: str = flax.struct.field(pytree_node=False, default="")

    @property
    def layer_names(self) -> tuple:
        return tuple(self.net.layer_names)

    @property
    def logits_layer(self) -> str:
        return self.net.logits_layer

    def check_layer(self, layer: str) -> None:
        if layer not in self.layer_names:
            raise ValueError(f"{self.name or type(self.net).__name__} has no layer {layer!r}; "
                             f"its layers are {', '.join(self.layer_names)}")

    def activations(self, images: jax.Array, layer: str) -> jax.Array:
        """The activations of `layer` for [0, 1] RGB images (a batch dimension is added to HWC)."""
        self.check_layer(layer)
        single = images.ndim == 3
        x = self.preprocessing(images[None] if single else images)
        out = self.net.apply(self.variables, x, layer=layer)
        return out[0] if single else out

    def logits(self, images: jax.Array) -> jax.Array:
        return self.activations(images, self.logits_layer)

    def probabilities(self, images: jax.Array) -> jax.Array:
        return jax.nn.softmax(self.logits(images), axis=-1)


@jax.jit
def probabilities(classifier: Classifier, images: jax.Array) -> jax.Array:
    """`classifier.probabilities(images)`, compiled with the weights as arguments, not constants."""
    return classifier.probabilities(images)


def top_k(classifier: Classifier, image: jax.Array, k: int = 5) -> list[tuple[int, float]]:
    """The k most probable ImageNet classes of one HWC image: [(index, probability), ...]."""
    p = np.asarray(probabilities(classifier, image))
    order = np.argsort(-p)[:k]
    return [(int(i), float(p[i])) for i in order]


def check_variables(net: nn.Module, variables: Any, input_shape: tuple, name: str = "") -> None:
    """ValueError unless `variables` has exactly the collections, names and shapes `net.init` makes."""
    expected = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros(input_shape, jnp.float32))
    expected = jax.tree_util.tree_map(lambda a: tuple(a.shape), expected)
    got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), variables)
    flat_expected = dict(jax.tree_util.tree_leaves_with_path(expected, is_leaf=lambda x: isinstance(x, tuple)))
    flat_got = dict(jax.tree_util.tree_leaves_with_path(got, is_leaf=lambda x: isinstance(x, tuple)))
    missing = sorted(jax.tree_util.keystr(p) for p in set(flat_expected) - set(flat_got))
    extra = sorted(jax.tree_util.keystr(p) for p in set(flat_got) - set(flat_expected))
    wrong = sorted(f"{jax.tree_util.keystr(p)}: {flat_got[p]} for {s}"
                   for p, s in flat_expected.items() if p in flat_got and flat_got[p] != s)
    if missing or extra or wrong:
        what = name or type(net).__name__
        raise ValueError(f"the weights do not fit {what}: missing {missing[:5]}, unexpected {extra[:5]}, "
                         f"wrong shapes {wrong[:5]}")


def to_device(variables: Any, dtype=jnp.float32) -> Any:
    """Float arrays as `dtype` device arrays (the weights of every classifier here are float32)."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), variables)


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """A PyTorch conv weight (O, I/groups, kh, kw) as a Flax kernel (kh, kw, I/groups, O)."""
    if np.ndim(weight) != 4:
        raise ValueError(f"expected a 4-D conv weight, got shape {np.shape(weight)}")
    return np.transpose(weight, (2, 3, 1, 0))


def dense_kernel(weight: np.ndarray) -> np.ndarray:
    """A PyTorch linear weight (out, in) as a Flax kernel (in, out)."""
    if np.ndim(weight) != 2:
        raise ValueError(f"expected a 2-D linear weight, got shape {np.shape(weight)}")
    return np.transpose(weight)
