"""Each building block against an independent numpy computation (REFERENCE §1.1, §6)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dip_jax import kernels
from dip_jax.models import layers


def np_correlate(x, w, stride=1):
    """Valid cross-correlation of x (H, W, Cin) with w (k, k, Cin, Cout), as PyTorch's conv."""
    k = w.shape[0]
    oh = (x.shape[0] - k) // stride + 1
    ow = (x.shape[1] - k) // stride + 1
    out = np.zeros((oh, ow, w.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            patch = x[i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
            out += patch.astype(np.float64) @ w[i, j].astype(np.float64)
    return out


def np_upsample_bilinear(x, f=2):
    """PyTorch's bilinear upsampling with align_corners=False, written out (one axis at a time)."""

    def along(a, axis):
        n = a.shape[axis]
        src = np.maximum((np.arange(n * f) + 0.5) / f - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        lam = src - i0
        a0, a1 = np.take(a, i0, axis=axis), np.take(a, i1, axis=axis)
        shape = [1] * a.ndim
        shape[axis] = -1
        return a0 * (1 - lam.reshape(shape)) + a1 * lam.reshape(shape)

    return along(along(x, 0), 1)


def rand(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("pad", ["zero", "reflection"])
@pytest.mark.parametrize("k,stride,size", [(3, 1, (9, 7)), (3, 2, (9, 7)), (5, 2, (10, 11)), (1, 1, (4, 5))])
def test_conv_matches_numpy(pad, k, stride, size):
    x = rand((1, *size, 3))
    conv = layers.Conv(4, k, stride, pad=pad)
    v = conv.init(jax.random.key(1), jnp.asarray(x))
    out = np.asarray(conv.apply(v, jnp.asarray(x)))[0]
    p = (k - 1) // 2
    xp = np.pad(x[0], ((p, p), (p, p), (0, 0)), mode="reflect" if pad == "reflection" else "constant")
    w, b = np.asarray(v["params"]["conv"]["kernel"]), np.asarray(v["params"]["conv"]["bias"])
    want = np_correlate(xp, w, stride) + b
    # symmetric padding at stride 2 gives ceil(n / 2) outputs (REFERENCE §6.2)
    chex.assert_shape(out, (-(-size[0] // stride), -(-size[1] // stride), 4))
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (2, 4, 4, 6)])
def test_pointwise_conv_value_and_gradients_match_numpy(shape):
    """The 1x1 path (a matrix product with its own backward pass) against numpy sums."""
    x, w, g = rand(shape, 0), rand((1, 1, shape[-1], 4), 1), rand((*shape[:-1], 4), 2)
    dn = jax.lax.conv_dimension_numbers(shape, w.shape, ("NHWC", "HWIO", "NHWC"))

    def loss(x, w):
        return jnp.sum(layers.pointwise_conv(x, w, (1, 1), ((0, 0), (0, 0)), dimension_numbers=dn) * g)

    out = layers.pointwise_conv(jnp.asarray(x), jnp.asarray(w), (1, 1), "VALID")
    dx, dw = jax.grad(loss, (0, 1))(jnp.asarray(x), jnp.asarray(w))
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    np.testing.assert_allclose(out, np.einsum("nhwc,cd->nhwd", x64, w64[0, 0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, np.einsum("nhwd,cd->nhwc", g64, w64[0, 0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw[0, 0], np.einsum("nhwc,nhwd->cd", x64, g64), rtol=1e-5, atol=1e-5)
    # per-example gradients under vmap (fit_seeds) equal the single-example ones
    per_example = jax.vmap(jax.grad(lambda x, w, g: jnp.sum(layers.pointwise_conv(x[None], w, (1, 1), "VALID") * g),
                                    1), (0, None, 0))(jnp.asarray(x), jnp.asarray(w), jnp.asarray(g)[:, None])
    chex.assert_trees_all_close(per_example.sum(0), dw, rtol=1e-5, atol=1e-5)


def test_pointwise_conv_rejects_other_convolutions():
    x = jnp.zeros((1, 4, 4, 2))
    for w, strides, padding in [(jnp.zeros((3, 3, 2, 1)), (1, 1), "VALID"),
                                (jnp.zeros((1, 1, 2, 1)), (2, 2), "VALID"),
                                (jnp.zeros((1, 1, 2, 1)), (1, 1), ((1, 1), (1, 1)))]:
        with pytest.raises(ValueError, match="1x1, stride-1"):
            layers.pointwise_conv(x, w, strides, padding)


def test_conv_init_is_torch_uniform():
    x = jnp.zeros((1, 8, 8, 64))
    v = layers.Conv(128, 3).init(jax.random.key(3), x)["params"]["conv"]
    bound = 1 / np.sqrt(64 * 9)
    for name in ("kernel", "bias"):
        a = np.asarray(v[name])
        assert np.all(np.abs(a) <= bound)
        assert np.abs(a).max() > 0.95 * bound
    a = np.asarray(v["kernel"]).ravel()
    # U(-b, b): mean 0, variance b^2 / 3
    np.testing.assert_allclose(a.mean(), 0.0, atol=0.01 * bound)
    np.testing.assert_allclose(a.var(), bound**2 / 3, rtol=0.02)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("size", [(8, 6), (9, 7)])
def test_pooling_downsample_floor_mode(mode, size):
    x = rand((1, *size, 2))
    out = np.asarray(layers.downsample(jnp.asarray(x), mode, 2))[0]
    h, w = size[0] // 2, size[1] // 2
    blocks = x[0, : 2 * h, : 2 * w].reshape(h, 2, w, 2, 2)
    want = blocks.mean(axis=(1, 3)) if mode == "avg" else blocks.max(axis=(1, 3))
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel_type", ["lanczos2", "lanczos3"])
def test_lanczos_downsample_matches_numpy(kernel_type):
    x = rand((1, 12, 10, 2))
    out = np.asarray(layers.downsample(jnp.asarray(x), kernel_type, 2))[0]
    k = kernels.kernel_2d(2, kernel_type)
    p = kernels.preserve_size_pad(k.shape[0], 2)
    xp = np.pad(x[0], ((p, p), (p, p), (0, 0)), mode="edge")
    w = np.zeros(k.shape + (2, 2))
    w[:, :, 0, 0] = w[:, :, 1, 1] = k  # the original's diagonal (per-channel) weight
    chex.assert_shape(out, (6, 5, 2))
    np.testing.assert_allclose(out, np_correlate(xp, w, 2), rtol=1e-5, atol=1e-6)


def test_lanczos_downsample_preserves_constants():
    x = jnp.full((1, 16, 16, 1), 0.37)
    np.testing.assert_allclose(layers.downsample(x, "lanczos2", 2), 0.37, rtol=1e-5)


@pytest.mark.parametrize("size", [(3, 5), (4, 4), (1, 2)])
def test_upsample_nearest_and_bilinear(size):
    x = rand((1, *size, 2))
    near = np.asarray(layers.upsample(jnp.asarray(x), "nearest"))[0]
    np.testing.assert_array_equal(near, np.repeat(np.repeat(x[0], 2, 0), 2, 1))
    bil = np.asarray(layers.upsample(jnp.asarray(x), "bilinear"))[0]
    np.testing.assert_allclose(bil, np_upsample_bilinear(x[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factor", [2, 3])
def test_bilinear_upsample_matches_jax_image_resize(factor):
    # x2 is computed as shifts and sums for speed; it must stay jax.image.resize's values
    x = jnp.asarray(rand((1, 7, 6, 3), seed=1))
    want = jax.image.resize(x, (1, 7 * factor, 6 * factor, 3), method="linear", antialias=False)
    chex.assert_trees_all_close(layers.upsample(x, "bilinear", factor), want, atol=1e-6)
    np.testing.assert_allclose(layers.upsample(x, "bilinear", factor)[0],
                               np_upsample_bilinear(np.asarray(x[0]), factor), rtol=1e-5, atol=1e-6)


def np_upsample_align_corners(x, out_h, out_w):
    """PyTorch's bilinear interpolation with align_corners=True, pixel by pixel (HWC)."""
    h, w, _ = x.shape
    out = np.zeros((out_h, out_w, x.shape[2]), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            sy = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
            sx = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            out[i, j] = ((1 - fy) * (1 - fx) * x[y0, x0] + (1 - fy) * fx * x[y0, x1]
                         + fy * (1 - fx) * x[y1, x0] + fy * fx * x[y1, x1])
    return out


@pytest.mark.parametrize("size,factor", [((3, 5), 2), ((4, 4), 2), ((1, 2), 2), ((3, 4), 3)])
def test_bilinear_align_corners_matches_numpy(size, factor):
    x = np.random.default_rng(1).random((1, *size, 2)).astype(np.float32)
    got = layers.upsample(jnp.asarray(x), "bilinear_align_corners", factor)
    chex.assert_shape(got, (1, size[0] * factor, size[1] * factor, 2))
    np.testing.assert_allclose(got[0], np_upsample_align_corners(x[0], size[0] * factor, size[1] * factor),
                               rtol=1e-5, atol=1e-6)
    # the corners are the input's corners, which align_corners=False does not keep
    np.testing.assert_allclose(got[0, [0, -1]][:, [0, -1]], x[0, [0, -1]][:, [0, -1]], rtol=1e-6)
    resized = layers.resize(jnp.asarray(x), (5, 7), "bilinear_align_corners")
    np.testing.assert_allclose(resized[0], np_upsample_align_corners(x[0], 5, 7), rtol=1e-5, atol=1e-6)


def test_concat_crop_rounds_offset_down():
    a = jnp.arange(5 * 7, dtype=jnp.float32).reshape(1, 5, 7, 1)
    b = jnp.ones((1, 4, 4, 2))
    out = layers.concat_crop([a, b])
    chex.assert_shape(out, (1, 4, 4, 3))
    # offsets (5-4)//2 = 0 and (7-4)//2 = 1: the excess row is cut at the bottom
    np.testing.assert_array_equal(out[0, :, :, 0], np.asarray(a)[0, 0:4, 1:5, 0])
    np.testing.assert_array_equal(out[..., 1:], 1.0)


@pytest.mark.parametrize("scale_init", ["ones", "uniform"])
def test_batchnorm_uses_current_sample_statistics(scale_init):
    x = rand((1, 6, 5, 3)) * 3 + 1
    bn = layers.BatchNorm(scale_init)
    v = bn.init(jax.random.key(2), jnp.asarray(x))
    gamma, beta = np.asarray(v["params"]["scale"]), np.asarray(v["params"]["bias"])
    if scale_init == "ones":
        np.testing.assert_array_equal(gamma, 1.0)
    else:
        assert np.all((gamma >= 0) & (gamma < 1)) and len(set(gamma.tolist())) == 3
    np.testing.assert_array_equal(beta, 0.0)
    v = {"params": {"scale": jnp.array([0.5, 2.0, -1.0]), "bias": jnp.array([0.1, 0.0, 0.3])}}
    out = np.asarray(bn.apply(v, jnp.asarray(x)))
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))  # biased, as PyTorch's train-mode normalisation
    want = (x - mean) / np.sqrt(var + 1e-5) * np.array([0.5, 2.0, -1.0]) + np.array([0.1, 0.0, 0.3])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_activations():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    xj = jnp.asarray(x)
    np.testing.assert_allclose(layers.activation("LeakyReLU")(xj), np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(layers.activation("Swish")(xj), x / (1 + np.exp(-x)), rtol=1e-5)
    np.testing.assert_allclose(layers.activation("ELU")(xj), np.where(x > 0, x, np.expm1(x)), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(layers.activation("none")(xj), x)
    with pytest.raises(ValueError, match="unknown act_fun"):
        layers.activation("ReLU6")


def test_unknown_modes_are_rejected():
    x = jnp.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="unknown pad"):
        layers.Conv(1, 3, pad="replication").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="unknown upsample_mode"):
        layers.upsample(x, "bicubic")
