"""Activation maximisation (paper's figure; REFERENCE §3.2 'Activation maximisation').

There is no observation: the fit drives one unit of a pretrained classifier, seen through the
top-left window of the net's output (`ClassifierWindow`). The original's two losses
(`utils/perceptual_loss/matcher.py`, times 5 in `activation_maximization.ipynb`):

- a conv layer (activations (H, W, C)): −weight · Σ of channel `unit` over the central window
  of half-width `window` (rows and columns H//2 − window ... H//2 + window − 1, clipped to
  the map; the notebook's 20 covers AlexNet's whole 13x13 conv4, and 1 is one neuron);
- an fc layer (activations (C,)): weight · |target − value of unit `unit`|, the logit driven
  towards `target` (300 in the notebook); `target=None` maximises it, −weight · value.

Where the window's start H//2 − window is negative, the original's slice counts it from the
end of the map (Python's negative indices), so on a map of side 14 with window 20 it starts
at row 1; we clip it to 0, the whole map, which is what the window means.

The observation passed to the fit is a blank canvas of the classifier's input size
(`canvas()`, or `simulate`): it gives the fit the image size and is otherwise unused (the
fit's logged `psnr_obs` is then the PSNR to a black image, which means nothing here). A
class is chosen by ImageNet index or name with `for_class` (names as `classifiers.class_index`).

`scores` reports the driven quantity (`unit_value`), the classifier's most probable class for
the window and its softmax probability (`top1_class`, `top1_probability`) and, when the
driven unit is a class's logit, that class's probability and rank among the 1000
(`target_probability`, `target_rank`, 1 = the classifier's answer). `observed` is False: the
canvas is a placeholder, so the fit logs no PSNR against it.

The TV-prior baseline optimises the pixels (`models.PixelImage`) under
`Regularized(ActivationMaximization(...), tv_weight, tv_beta)`. The notebook's is
1e-6 · TV_β=2 of the *preprocessed* image (BGR x255 minus the mean); TV_β scales as
255^(2β) with the intensity scale and ignores the channel order and mean, so that is
tv_weight = 1e-6 · 255⁴ ≈ 4228 with tv_beta = 2 on our [0, 1] image.
"""

from __future__ import annotations

from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from dip_jax.classifiers import Classifier, imagenet
from dip_jax.operators.base import Operator
from dip_jax.operators.classifier_window import ClassifierWindow


def central_window(size: int, half_width: int) -> tuple[int, int]:
    """[start, stop) of the original's central window on a map side of `size`, clipped to the map."""
    return max(size // 2 - half_width, 0), min(size // 2 + half_width, size)


@flax.struct.dataclass
class ActivationMaximization(ClassifierWindow, Operator):
    """Drive unit `unit` of `classifier`'s layer `layer`: a channel of a conv layer, a logit of an fc layer."""

    classifier: Classifier
    layer: str = flax.struct.field(pytree_node=False)
    unit: int = flax.struct.field(pytree_node=False)
    window: int = flax.struct.field(pytree_node=False, default=20)
    target: Optional[float] = flax.struct.field(pytree_node=False, default=300.0)
    weight: float = 5.0
    image_size: tuple | None = flax.struct.field(pytree_node=False, default=None)
    output_size: tuple | None = flax.struct.field(pytree_node=False, default=None)

    observed = False  # the canvas only gives the fit its size

    def __post_init__(self):
        # Static fields only: pytrees are rebuilt through __init__ with placeholder leaves.
        self.classifier.check_layer(self.layer)
        if self.window < 1:
            raise ValueError(f"the window's half-width must be >= 1, got {self.window}")
        self.check_sizes()

    @classmethod
    def for_class(cls, classifier: Classifier, name_or_index, layer: Optional[str] = None, **kwargs):
        """Drive an ImageNet class's logit (the classifier's logits layer by default), by index or name."""
        return cls(classifier, layer or classifier.logits_layer, imagenet.class_index(name_or_index), **kwargs)

    def activations(self, image: jax.Array) -> jax.Array:
        return self.classifier.activations(image, self.layer)

    def unit_value(self, activations: jax.Array) -> jax.Array:
        """The driven quantity from a layer's activations: the unit's value, or its window sum on a map."""
        if not 0 <= self.unit < activations.shape[-1]:
            raise ValueError(f"{self.layer} has {activations.shape[-1]} units; got unit {self.unit}")
        if activations.ndim == 1:
            return activations[self.unit]
        (top, bottom), (left, right) = (central_window(n, self.window) for n in activations.shape[:2])
        return jnp.sum(activations[top:bottom, left:right, self.unit])

    def value(self, x: jax.Array) -> jax.Array:
        """What the loss drives, for the net's output x."""
        return self.unit_value(self.activations(self.forward(x)))

    def data_term(self, x, y):
        del y  # the blank canvas
        a = self.activations(self.forward(x))
        v = self.unit_value(a)
        if a.ndim == 1 and self.target is not None:
            return self.weight * jnp.abs(self.target - v)
        return -self.weight * v

    def scores(self, x, y):
        del y
        window = self.forward(x)
        logits = self.classifier.logits(window)
        p = jax.nn.softmax(logits)
        top = jnp.argmax(p)
        out = {"unit_value": self.unit_value(self.activations(window)), "top1_class": top, "top1_probability": p[top]}
        if self.layer == self.classifier.logits_layer:
            out.update(target_probability=p[self.unit], target_rank=1 + jnp.sum(p > p[self.unit]))
        return out

    def canvas(self) -> jax.Array:
        """The blank observation: zeros of the classifier's input size."""
        return jnp.zeros((*self.crop_size, 3), jnp.float32)

    def simulate(self, clean, key):
        """The blank canvas; `clean` and `key` are unused."""
        del clean, key
        return self.canvas()
