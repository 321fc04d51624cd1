"""Super-resolution: A is the original's fixed-kernel downsampler (REFERENCE §4.1).

`forward` is `Downsampler(kernel_type, phase, preserve_size=True)`: replication padding,
then a per-channel convolution with stride `factor` (`dip_jax.models.layers.lanczos_downsample`
with the kernels of `dip_jax.kernels`). An H x W image maps to (H / f) x (W / f).

`simulate` makes the low-resolution image as the notebook does (§4.2): the 8-bit image
resized with Pillow's antialiased Lanczos (`Image.LANCZOS`, the former `ANTIALIAS`) and
read back as 8-bit. That is *not* the lanczos2 operator of the loss (REFERENCE §6.12); the
published results were fitted to this PIL image, so we keep the mismatch.
`baseline` is PIL bicubic upsampling of the 8-bit low-resolution image, as the notebook's.
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import kernels
from dip_jax.models import layers
from dip_jax.operators.base import Operator


def _to_pil(image):
    from PIL import Image

    a = np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(a[:, :, 0] if a.shape[-1] == 1 else a)


def _from_pil(image, channels: int) -> jax.Array:
    a = np.asarray(image, np.float32) / 255.0
    return jnp.asarray(a.reshape(a.shape[0], a.shape[1], channels))


def pil_resize(image, height: int, width: int, method: str) -> jax.Array:
    """An HWC [0, 1] image resized by Pillow on its 8-bit version: method in {lanczos, bicubic, nearest}."""
    from PIL import Image

    resample = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[method]
    return _from_pil(_to_pil(image).resize((width, height), resample), np.shape(image)[-1])


@flax.struct.dataclass
class SuperResolution(Operator):
    """y = D(x): the original's downsampler by `factor` with `kernel_type` and `phase`."""

    factor: int = flax.struct.field(pytree_node=False, default=4)
    kernel_type: str = flax.struct.field(pytree_node=False, default="lanczos2")
    phase: float = flax.struct.field(pytree_node=False, default=0.5)

    def __post_init__(self):
        if not isinstance(self.factor, (int, np.integer)) or self.factor < 1:
            raise ValueError(f"the SR factor must be a positive integer, got {self.factor!r}")
        kernels.kernel_1d(self.factor, self.kernel_type, self.phase)  # validates type and phase

    def check_size(self, height: int, width: int) -> None:
        if height % self.factor or width % self.factor:
            raise ValueError(f"the factor {self.factor} does not divide the image size {height}x{width}")

    def forward(self, x):
        self.check_size(*x.shape[:2])
        return layers.lanczos_downsample(x[None], self.factor, self.kernel_type, self.phase)[0]

    def simulate(self, clean, key):
        """The notebook's LR image: Pillow's antialiased Lanczos of the 8-bit image; no randomness."""
        del key
        h, w = clean.shape[:2]
        self.check_size(h, w)
        return pil_resize(clean, h // self.factor, w // self.factor, "lanczos")

    def baseline(self, y):
        """PIL bicubic upsampling of the low-resolution image (the notebook's baseline)."""
        h, w, _ = self.output_shape(y.shape)
        return pil_resize(y, h, w, "bicubic")

    def output_shape(self, observation_shape):
        h, w, c = observation_shape
        return (h * self.factor, w * self.factor, c)

    def tile(self, window):
        return self  # shift-invariant; tiles are cut on the low-resolution grid (dip_jax.tiles.grid_for)

    def tile_margin(self) -> int:
        """Low-resolution pixels the downsampling kernel reaches beyond a tile's border."""
        return math.ceil(len(kernels.kernel_1d(self.factor, self.kernel_type, self.phase)) / (2 * self.factor))

