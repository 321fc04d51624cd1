"""The original's `ResNet` (`models/resnet.py`, REFERENCE §1.5), NHWC.

Where we knowingly differ from the original:
- `need_sigmoid` is honoured (the original always appends a sigmoid); the default is True,
  so the default net is the original's.
- `get_net('ResNet')` is broken in the original (it passes BatchNorm2d into the `act_fun`
  slot); `dip_jax.models.get_net` builds what that call meant (see there).
- The residual add's crop (dead code in the original, and broken in Python 3) is left out:
  every conv keeps the size.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from dip_jax.models import layers

RESNET_NORMS = ("batch", "instance")


class ResNet(nn.Module):
    """conv3 -> act -> `num_blocks` residual blocks -> conv3 -> norm -> conv3 -> sigmoid.

    Any H and W: every conv has stride 1 and keeps the size. Only the first and the last
    convs honour `pad`; the others zero-pad, as in the original. The defaults of the
    widths are the library figure's (8 blocks of 32 channels); the original has none.
    """

    num_input_channels: int = 32
    num_output_channels: int = 3
    num_blocks: int = 8
    num_channels: int = 32
    need_residual: bool = True
    act_fun: str = "LeakyReLU"
    need_sigmoid: bool = True
    norm_layer: str = "batch"
    pad: str = "reflection"
    bn_scale_init: str = "ones"

    def __post_init__(self):
        layers.check_choice("norm_layer", self.norm_layer, RESNET_NORMS)
        layers.check_choice("pad", self.pad, layers.PAD_MODES)
        layers.activation(self.act_fun)  # validates the name
        super().__post_init__()

    def _norm(self):
        # The original builds every norm as norm_layer(C, affine=True), InstanceNorm2d included.
        return layers.normalization(self.norm_layer, self.bn_scale_init, affine=True)

    def _block(self, x):
        """[conv3 (no bias) -> norm -> act -> conv3 (no bias) -> norm] (+ x); no act after the add."""
        act = layers.activation(self.act_fun)
        y = layers.Conv(self.num_channels, 3, use_bias=False)(x)
        y = act(self._norm()(y))
        y = layers.Conv(self.num_channels, 3, use_bias=False)(y)
        y = self._norm()(y)
        return x + y if self.need_residual else y

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.ndim != 4 or z.shape[-1] != self.num_input_channels:
            raise ValueError(f"expected z of shape (N, H, W, {self.num_input_channels}), got {tuple(z.shape)}")
        x = layers.Conv(self.num_channels, 3, pad=self.pad)(z)
        x = layers.activation(self.act_fun)(x)
        for _ in range(self.num_blocks):
            x = self._block(x)
        x = layers.Conv(self.num_channels, 3)(x)
        x = self._norm()(x)
        x = layers.Conv(self.num_output_channels, 3, pad=self.pad)(x)
        return nn.sigmoid(x) if self.need_sigmoid else x


def size_multiple(net: ResNet) -> int:
    return 1


def min_input_size(net: ResNet) -> int:
    """Reflection padding by 1 needs 2 pixels, and a norm over one pixel is degenerate."""
    return 2
