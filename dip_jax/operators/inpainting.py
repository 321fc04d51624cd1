"""Inpainting: A multiplies by a binary mask (1 = known pixel, 0 = missing).

The data term is the original's MSE(x * m, y * m) averaged over *all* pixels and channels,
not only the known ones (REFERENCE §3.1, §6.17); under Adam the scale hardly matters. Masks
are single-channel (H, W, 1) and broadcast over the image's channels, as the original's PNG
masks are; the 2%-restoration mask, replicated over channels there, is the same thing.

Mask makers: `bernoulli_mask` (keep each pixel with probability `keep`, from a key; the
original draws an unseeded fresh mask on every run, §6.17), `box_mask` and `text_mask`
(demo masks). Masks from files come from `dip_jax.io.load_mask`.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dip_jax.operators.base import Operator


def check_mask(mask, image_shape, name: str = "the mask") -> None:
    """ValueError unless `mask` is (H, W, 1) or (H, W, C) for an image of shape (H, W, C) with a known pixel."""
    mask_shape, image_shape = tuple(np.shape(mask)), tuple(image_shape)
    if len(mask_shape) != 3 or mask_shape[:2] != image_shape[:2] or mask_shape[2] not in (1, image_shape[2]):
        raise ValueError(
            f"{name} has shape {mask_shape[:2]} (H, W) but the image is {image_shape[0]}x{image_shape[1]}"
            if mask_shape[:2] != image_shape[:2]
            else f"{name} has shape {mask_shape}; expected (H, W, 1) or (H, W, {image_shape[2]})"
        )
    if not np.any(np.asarray(mask)):
        raise ValueError(f"{name} has no known pixel (it is all black): there is nothing to fit")


@flax.struct.dataclass
class Inpainting(Operator):
    """y = x * mask; `mask` is (H, W, 1) (or (H, W, C)) with 1 = known."""

    mask: jax.Array

    def forward(self, x):
        return x * self.mask

    def data_term(self, x, y):
        # Masking y too: an observation given by the user may hold anything in its holes.
        return jnp.mean(jnp.square((x - y) * self.mask))

    def simulate(self, clean, key):
        """The masked image, zeros in the holes (what the original shows and fits); no randomness."""
        check_mask(self.mask, clean.shape)
        del key
        return self.forward(clean)

    def tile(self, window):
        rows, cols = window
        return self.replace(mask=self.mask[rows, cols])



def bernoulli_mask(key: jax.Array, height: int, width: int, keep: float) -> jax.Array:
    """(H, W, 1) float mask with each pixel known independently with probability `keep`."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"the keep fraction must be in (0, 1], got {keep}")
    return jax.random.bernoulli(key, keep, (height, width, 1)).astype(jnp.float32)


def box_mask(height: int, width: int, top: int, left: int, box_height: int, box_width: int) -> np.ndarray:
    """(H, W, 1) mask that is 0 inside the box and 1 elsewhere: a large hole for demos."""
    mask = np.ones((height, width, 1), np.float32)
    mask[top : top + box_height, left : left + box_width] = 0.0
    return mask


def text_mask(height: int, width: int, text: str = "Deep Image Prior", line_spacing: int = 24) -> np.ndarray:
    """(H, W, 1) mask with `text` written as holes (0) on repeated lines, like the kate demo's mask.

    Drawn with Pillow's built-in font at a size that makes strokes a few pixels wide.
    """
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    size = max(8, line_spacing * 2 // 3)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    for i, top in enumerate(range(line_spacing // 4, height, line_spacing)):
        draw.text((-(i * size) % max(width // 3, 1) - size, top), (text + "  ") * 8, fill=0, font=font)
    return (np.asarray(canvas, np.float32) / 255.0 > 0.5).astype(np.float32)[:, :, None]
