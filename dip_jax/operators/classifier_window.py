"""What the classifier of a feature task sees: the top-left window of the net's output.

The original's feature-inversion and activation-maximisation notebooks fit a net with a
256x256 output and give the classifier its top-left 224x224 (or 227x227) window, `out[:, :,
:imsize, :imsize]` (REFERENCE §6.16). `ClassifierWindow` is that geometry for operators that
hold a `classifier`: `image_size` is the (H, W) the classifier sees (its training size by
default) and the observation's size; `output_size` is the net's (the image size by default,
i.e. no crop); `forward` crops.
"""

from __future__ import annotations

from typing import Optional

import jax


class ClassifierWindow:
    """Mixin for operators with fields `classifier`, `image_size` and `output_size` (both optional (H, W))."""

    classifier: object
    image_size: Optional[tuple]
    output_size: Optional[tuple]

    @property
    def crop_size(self) -> tuple:
        return tuple(self.image_size or self.classifier.input_size)

    @property
    def net_size(self) -> tuple:
        return tuple(self.output_size or self.crop_size)

    def check_sizes(self) -> None:
        (h, w), (oh, ow) = self.crop_size, self.net_size
        if oh < h or ow < w:
            raise ValueError(f"the net's output ({oh}x{ow}) is smaller than the classifier's input ({h}x{w})")

    def forward(self, x: jax.Array) -> jax.Array:
        """The top-left window of the net's output that the classifier sees."""
        h, w = self.crop_size
        return x[:h, :w]

    def output_shape(self, observation_shape) -> tuple:
        h, w, c = observation_shape
        if (h, w) != self.crop_size:
            raise ValueError(f"the observation is {h}x{w} but the classifier is given {self.crop_size[0]}x"
                             f"{self.crop_size[1]} images: resize it, or set image_size")
        return (*self.net_size, c)
