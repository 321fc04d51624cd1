"""Blind JPEG artifact removal: A is the identity on the decoded JPEG (REFERENCE §3.2 'Blind JPEG').

The fit sees only the decoded image; early stopping is the prior (the paper's snail is good
at 2400 steps and has fitted the blocks by 50K, §5.4). `simulate` encodes the clean image
as JPEG at `quality` with Pillow and decodes it (4:2:0 chroma subsampling, Pillow's default).
"""

from __future__ import annotations

import io as _io

import flax.struct
import jax.numpy as jnp
import numpy as np

from dip_jax.operators.base import Operator


def jpeg_roundtrip(image, quality: int) -> np.ndarray:
    """Encode an HWC [0, 1] image as an 8-bit JPEG at `quality` (1-95) and decode it."""
    from PIL import Image

    a = np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    channels = a.shape[-1]
    buffer = _io.BytesIO()
    Image.fromarray(a[:, :, 0] if channels == 1 else a).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(buffer), np.float32) / 255.0
    return decoded.reshape(a.shape[0], a.shape[1], channels)


@flax.struct.dataclass
class JPEGArtifacts(Operator):
    """y = x, the decoded JPEG; `quality` is used only to simulate an observation."""

    quality: int = flax.struct.field(pytree_node=False, default=10)

    def __post_init__(self):
        if not 1 <= int(self.quality) <= 100:
            raise ValueError(f"the JPEG quality must be in [1, 100], got {self.quality}")

    def forward(self, x):
        return x

    def simulate(self, clean, key):
        """JPEG encoding at `quality` is deterministic: the key is unused."""
        del key
        return jnp.asarray(jpeg_roundtrip(clean, self.quality))

    def tile(self, window):
        return self  # the identity on the decoded JPEG: every tile is restored as the image is

