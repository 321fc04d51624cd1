"""Building blocks of the original `models/common.py` (REFERENCE §1.1, §1.9, §6), NHWC.

Numerical choices that decide equivalence with the PyTorch original:
- conv weights *and* biases are U(-b, b), b = 1/sqrt(fan_in) (PyTorch's default; Flax's is
  lecun_normal and zeros);
- stride-2 convs pad symmetrically, (k-1)//2 per side, giving ceil(n/2) outputs ('SAME' in
  XLA pads asymmetrically at stride 2 and would shift the grid);
- reflection padding is numpy's 'reflect' (the edge pixel is not repeated);
- BatchNorm always normalises with the current sample's statistics (the original never
  leaves train mode, batch of one), so no running averages exist here at all;
- transposed convs (UNet's 'deconv') use PyTorch >= 1.0's init, whose fan_in comes from the
  weight's second dimension, i.e. the *output* channels (REFERENCE §1.9).
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import kernels

PAD_MODES = ("zero", "reflection")
DOWNSAMPLE_MODES = ("stride", "avg", "max", "lanczos2", "lanczos3")
# 'bilinear' is PyTorch >= 0.4's `align_corners=False` (half-pixel centres); the paper's runs
# (PyTorch 0.3/0.4 era) upsampled with what is now `align_corners=True`: 'bilinear_align_corners'.
UPSAMPLE_MODES = ("nearest", "bilinear", "bilinear_align_corners")
ACTIVATIONS = ("LeakyReLU", "ReLU", "Swish", "ELU", "none")
BN_SCALE_INITS = ("ones", "uniform")
NORMALIZATIONS = ("batch", "instance", "none")


def torch_uniform_init(fan_in: int) -> Callable:
    """PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def check_choice(name: str, value, choices) -> None:
    """The one error every constructor gives for an unknown option name."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")


def pointwise_conv(lhs, rhs, window_strides, padding, *, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None):
    """A 1x1 stride-1 NHWC convolution as a matrix product; `nn.Conv`'s `conv_general_dilated` slot.

    The same numbers as the convolution, and faster to differentiate on XLA's CPU backend:
    there the weight gradient of a 1x1 *convolution* is another convolution over a
    transposed copy of the activations (a full strided read and write of, e.g., 128x256x256
    floats per layer), and even `dot_general`'s own autodiff rule picked a transposed copy
    of its operand. `_pointwise`'s backward pass contracts the flattened pixels of the
    activations and of the output gradient in place. Only what `nn.Conv` passes for a 1x1,
    stride-1, unpadded, ungrouped convolution is accepted.
    """
    if (rhs.shape[:2] != (1, 1) or tuple(window_strides) != (1, 1) or feature_group_count != 1
            or not (padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding))
            or any(d not in (None, 1, (1, 1)) for d in (lhs_dilation, rhs_dilation))):
        raise ValueError("pointwise_conv is for 1x1, stride-1, unpadded, ungrouped convolutions")
    if dimension_numbers is not None and tuple(dimension_numbers.lhs_spec) != (0, 3, 1, 2):
        raise ValueError("pointwise_conv takes NHWC inputs")
    if precision is not None:
        return jax.lax.dot_general(lhs, rhs[0, 0], (((3,), (0,)), ((), ())), precision=precision)
    return _pointwise(lhs, rhs[0, 0])


@jax.custom_vjp
def _pointwise(x, w):
    """x (..., C) @ w (C, D) over the flattened leading axes."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def _pointwise_fwd(x, w):
    return _pointwise(x, w), (x, w)


def _pointwise_bwd(residuals, g):
    x, w = residuals
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    dx = (g2 @ w.T).reshape(x.shape)
    dw = jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())))  # sum over pixels, no transposed copy
    return dx, dw


_pointwise.defvjp(_pointwise_fwd, _pointwise_bwd)


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    check_choice("act_fun", name, ACTIVATIONS)
    return {
        "LeakyReLU": lambda x: nn.leaky_relu(x, negative_slope=0.2),
        "ReLU": nn.relu,  # UNet's blocks and the decoders (the original passes nn.ReLU itself)
        "Swish": nn.swish,
        "ELU": nn.elu,
        "none": lambda x: x,
    }[name]


class Conv(nn.Module):
    """`common.conv`: optional reflection pad, conv, optional downsampler (REFERENCE §1.1)."""

    features: int
    kernel_size: int
    stride: int = 1
    use_bias: bool = True
    pad: str = "zero"
    downsample_mode: str = "stride"

    @nn.compact
    def __call__(self, x):
        check_choice("pad", self.pad, PAD_MODES)
        check_choice("downsample_mode", self.downsample_mode, DOWNSAMPLE_MODES)
        k = self.kernel_size
        p = (k - 1) // 2
        conv_stride = self.stride if self.downsample_mode == "stride" else 1
        if self.pad == "reflection" and p > 0:
            x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
            padding = ((0, 0), (0, 0))
        else:
            padding = ((p, p), (p, p))
        fan_in = x.shape[-1] * k * k
        x = nn.Conv(
            self.features,
            (k, k),
            strides=(conv_stride, conv_stride),
            padding=padding,
            use_bias=self.use_bias,
            kernel_init=torch_uniform_init(fan_in),
            bias_init=torch_uniform_init(fan_in),
            conv_general_dilated=pointwise_conv if (k, conv_stride) == (1, 1) else None,
            name="conv",
        )(x)
        if self.stride != 1 and self.downsample_mode != "stride":
            x = downsample(x, self.downsample_mode, self.stride)
        return x


class ConvTranspose(nn.Module):
    """`nn.ConvTranspose2d(in, features, k, stride, padding)` with PyTorch >= 1.0's init.

    PyTorch stores the weight as (in, out, k, k) and takes fan_in from its second dimension,
    so the bound is 1/sqrt(features * k * k), for the weight and the bias alike (PyTorch 0.4
    used in * k * k; REFERENCE §1.9). Output size: stride * (n - 1) + k - 2 * padding.
    """

    features: int
    kernel_size: int = 4
    stride: int = 2
    padding: int = 1
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        if not 0 <= p <= k - 1:
            raise ValueError(f"padding must be in [0, kernel_size - 1], got {p}")
        init = torch_uniform_init(self.features * k * k)
        kernel = self.param("kernel", init, (k, k, x.shape[-1], self.features), jnp.float32)
        y = conv_transpose(x, kernel, s, p)
        if self.use_bias:
            y = y + self.param("bias", init, (self.features,), jnp.float32)
        return y


def _phase_plan(size: int, kernel_size: int, stride: int, padding: int) -> list[tuple]:
    """Per output phase a (outputs s*m + a) along one axis: (kernel taps, pad low, pad high, length).

    Output s*m + a receives x[i] * w[t] for t = a + p - s*(i - m), so only taps t = t0 + s*j
    with t0 = (a + p) mod s reach it, from inputs i = m + c - j, c = (a + p - t0) / s: an
    ordinary correlation with the reversed taps over x padded by J - 1 - c at the start.
    """
    out_size = stride * (size - 1) + kernel_size - 2 * padding
    plan = []
    for a in range(stride):
        t0 = (a + padding) % stride
        taps = list(range(t0, kernel_size, stride))
        c = (a + padding - t0) // stride
        length = -(-(out_size - a) // stride)
        low = len(taps) - 1 - c
        high = length - size - low + len(taps) - 1
        plan.append((taps[::-1], low, high, length))
    return plan


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """PyTorch's conv_transpose2d (kernel (k, k, in, out)), as stride^2 ordinary convs, interleaved.

    Each output phase (outputs s*m + a, s*n + b) is a plain stride-1 conv of the input with a
    subset of the kernel's taps. The textbook form, a conv of the input dilated by the stride
    (`lax.conv_transpose`), computes the same, but XLA's CPU backend ran it 17x slower
    (forward and backward, 88x56x128 -> 64 channels, k 4, stride 2).
    """
    n, h, w, _ = x.shape
    k = kernel.shape[0]
    features = kernel.shape[-1]
    rows_plan = _phase_plan(h, k, stride, padding)
    cols_plan = _phase_plan(w, k, stride, padding)
    rows_len, cols_len = rows_plan[0][3], cols_plan[0][3]  # phase 0 is the longest
    phases = []
    for taps_r, low_r, high_r, len_r in rows_plan:
        row = []
        for taps_c, low_c, high_c, len_c in cols_plan:
            if not taps_r or not taps_c:  # no tap reaches this phase (kernel smaller than stride)
                y = jnp.zeros((n, len_r, len_c, features), x.dtype)
            else:
                # lax.pad crops where a pad is negative
                config = ((0, 0, 0), (low_r, high_r, 0), (low_c, high_c, 0), (0, 0, 0))
                xp = jax.lax.pad(x, jnp.zeros((), x.dtype), config)
                sub = kernel[np.array(taps_r)][:, np.array(taps_c)]
                y = jax.lax.conv_general_dilated(
                    xp, sub, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
            row.append(jnp.pad(y, ((0, 0), (0, rows_len - len_r), (0, cols_len - len_c), (0, 0))))
        phases.append(jnp.stack(row, axis=3))  # (n, rows, cols, s, features)
    y = jnp.stack(phases, axis=2)  # (n, rows, s, cols, s, features)
    y = y.reshape(n, rows_len * stride, cols_len * stride, features)
    out_h, out_w = stride * (h - 1) + k - 2 * padding, stride * (w - 1) + k - 2 * padding
    return y[:, :out_h, :out_w]


def downsample(x: jax.Array, mode: str, factor: int) -> jax.Array:
    """The downsamplers that follow a stride-1 conv when `downsample_mode != 'stride'`."""
    window = (factor, factor)
    if mode == "avg":  # PyTorch AvgPool2d: floor mode, no padding
        return nn.avg_pool(x, window, strides=window, padding="VALID")
    if mode == "max":
        return nn.max_pool(x, window, strides=window, padding="VALID")
    if mode in ("lanczos2", "lanczos3"):
        return lanczos_downsample(x, factor, mode)
    raise ValueError(f"no downsampler for mode {mode!r}")


def lanczos_downsample(x: jax.Array, factor: int, kernel_type: str, phase: float = 0.5) -> jax.Array:
    """`Downsampler(..., preserve_size=True)`: replication pad, then a fixed per-channel kernel.

    The kernel is a constant (not a parameter), applied to each channel separately, which is
    what the original's diagonal-weight conv computes.
    """
    k2d = kernels.kernel_2d(factor, kernel_type, phase)
    pad = kernels.preserve_size_pad(k2d.shape[0], factor)
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    c = x.shape[-1]
    w = jnp.broadcast_to(jnp.asarray(k2d, x.dtype)[:, :, None, None], k2d.shape + (1, c))
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=(factor, factor),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c,
    )


def upsample(x: jax.Array, mode: str, factor: int = 2) -> jax.Array:
    """`nn.Upsample(scale_factor=2)`: nearest, or bilinear with half-pixel centres.

    `jax.image.resize(..., 'linear')` samples at half-pixel centres and renormalises the
    weights at the border, which for upsampling equals PyTorch's `align_corners=False`
    with clamped edges (tests check it against an independent numpy version).
    """
    check_choice("upsample_mode", mode, UPSAMPLE_MODES)
    n, h, w, c = x.shape
    if mode == "nearest":
        return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
    if mode == "bilinear_align_corners":
        return _resize_align_corners(x, (h * factor, w * factor))
    if factor == 2:
        return _bilinear_x2(_bilinear_x2(x, 1), 2)
    return jax.image.resize(x, (n, h * factor, w * factor, c), method="linear", antialias=False)


def _bilinear_x2(x: jax.Array, axis: int) -> jax.Array:
    """Half-pixel bilinear x2 along one axis as shifts and sums (the skip net's upsampler).

    Output 2i samples input i - 1/4 (3/4 x[i] + 1/4 x[i-1]) and 2i+1 samples i + 1/4
    (3/4 x[i] + 1/4 x[i+1]), with the edge pixel repeated past the border, which is
    PyTorch's clamping and what `jax.image.resize` computes. `jax.image.resize` does it as a
    dense (2n x n) matrix product per axis, with transposes around it; this form is
    elementwise and fuses. A step of the standard net ran 1.07x faster at 256 x 256 and 1.11x
    at 512 x 512 on a 2-core CPU (same values to float rounding; tests check both forms).
    """
    n = x.shape[axis]
    first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
    last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
    prev = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis=axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis=axis)
    even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
    out = jnp.stack([even, odd], axis=axis + 1)
    return out.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])


def align_corners_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation with `align_corners=True`: output i samples input i (n_in-1)/(n_out-1)."""
    src = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def _resize_align_corners(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Bilinear resampling of NHWC `x` to `size` with `align_corners=True` (corner pixels kept)."""
    rows = align_corners_matrix(x.shape[1], size[0])
    cols = align_corners_matrix(x.shape[2], size[1])
    return jnp.einsum("oh,nhwc,pw->nopc", rows, x, cols)


def resize(x: jax.Array, size: tuple[int, int], mode: str) -> jax.Array:
    """`nn.Upsample(size=(H, W))`: resampling to an explicit size (the ConvDecoder's layers).

    'nearest' is PyTorch's: output pixel i reads input floor(i * in / out) (not the
    half-pixel rule of `jax.image.resize`, which differs at non-integer factors).
    'bilinear' is `align_corners=False`, as in `upsample`.
    """
    check_choice("upsample_mode", mode, UPSAMPLE_MODES)
    n, h, w, c = x.shape
    out_h, out_w = size
    if mode == "nearest":
        rows = np.minimum(np.floor(np.arange(out_h) * (h / out_h)).astype(np.int32), h - 1)
        cols = np.minimum(np.floor(np.arange(out_w) * (w / out_w)).astype(np.int32), w - 1)
        return x[:, rows][:, :, cols]
    if mode == "bilinear_align_corners":
        return _resize_align_corners(x, (out_h, out_w))
    return jax.image.resize(x, (n, out_h, out_w, c), method="linear", antialias=False)


def concat_crop(xs: Sequence[jax.Array]) -> jax.Array:
    """`common.Concat`: centre-crop to the smallest H and W (offset rounds down), then concat."""
    h = min(x.shape[1] for x in xs)
    w = min(x.shape[2] for x in xs)
    cropped = []
    for x in xs:
        dh = (x.shape[1] - h) // 2
        dw = (x.shape[2] - w) // 2
        cropped.append(x[:, dh : dh + h, dw : dw + w, :])
    return jnp.concatenate(cropped, axis=-1)


def _affine(module: nn.Module, channels: int, scale_init: str):
    """The per-channel (gamma, beta) of a norm layer; gamma per `scale_init`, beta 0."""
    check_choice("bn_scale_init", scale_init, BN_SCALE_INITS)
    init = nn.initializers.ones if scale_init == "ones" else nn.initializers.uniform(1.0)
    scale = module.param("scale", init, (channels,), jnp.float32)
    bias = module.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
    return scale, bias


class BatchNorm(nn.Module):
    """Train-mode BatchNorm2d: per-channel mean and biased variance over N, H, W, eps 1e-5.

    `scale_init`: 'ones' is PyTorch >= 1.2; 'uniform' is U(0, 1), the default of the
    PyTorch 0.4 the paper's code pinned (REFERENCE §1.9, §6.5).
    """

    scale_init: str = "ones"
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        scale, bias = _affine(self, x.shape[-1], self.scale_init)
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
        inv = scale * jax.lax.rsqrt(var + self.epsilon)
        return x * inv + (bias - mean * inv)


class InstanceNorm(nn.Module):
    """`InstanceNorm2d`: each sample's channels by their own spatial mean and biased variance.

    With a batch of one this is the train-mode BatchNorm above. PyTorch's default has no
    affine parameters (UNet uses it so); ResNet's blocks ask for `affine=True`.
    """

    affine: bool = False
    scale_init: str = "ones"
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
        x = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        if self.affine:
            scale, bias = _affine(self, x.shape[-1], self.scale_init)
            x = x * scale + bias
        return x


def normalization(kind: str, scale_init: str = "ones", affine: bool = True) -> Callable[[jax.Array], jax.Array]:
    """A fresh norm layer by name: 'batch', 'instance' (affine only if asked) or 'none'.

    Call it inside a compact method: each call creates a new submodule.
    """
    check_choice("norm_layer", kind, NORMALIZATIONS)
    if kind == "batch":
        return BatchNorm(scale_init)
    if kind == "instance":
        return InstanceNorm(affine=affine, scale_init=scale_init)
    return lambda x: x
