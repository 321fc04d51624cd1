import jax
import jax.numpy as jnp
import numpy as np

from dip_jax import operators


def test_denoising_simulates_clipped_gaussian_noise():
    clean = jnp.full((128, 128, 3), 0.5)
    y = np.asarray(operators.Denoising(25.0).simulate(clean, jax.random.key(0)))
    np.testing.assert_allclose((y - 0.5).std(), 25 / 255, rtol=0.02)
    dark = np.asarray(operators.Denoising(25.0).simulate(jnp.zeros((64, 64, 1)), jax.random.key(0)))
    assert dark.min() == 0.0 and np.mean(dark == 0) > 0.45  # clipped to [0, 1], not quantised
    assert len(np.unique(y)) > 1000


def test_denoising_is_identity_with_mse_data_term():
    op = operators.Denoising(10.0)
    x = jax.random.uniform(jax.random.key(1), (8, 8, 3))
    y = jax.random.uniform(jax.random.key(2), (8, 8, 3))
    np.testing.assert_array_equal(op.forward(x), x)
    np.testing.assert_allclose(op.data_term(x, y), np.mean((np.asarray(x) - np.asarray(y)) ** 2), rtol=1e-6)
    np.testing.assert_array_equal(op.baseline(y), y)
    assert op.output_shape((8, 8, 3)) == (8, 8, 3)


def test_denoising_simulation_is_deterministic_under_a_key():
    op = operators.Denoising(25.0)
    clean = jnp.full((8, 8, 3), 0.5)
    np.testing.assert_array_equal(op.simulate(clean, jax.random.key(7)), op.simulate(clean, jax.random.key(7)))


# ---------------------------------------------------------------------------------------------
# Every operator: the adjoint identity for linear ones, shapes, simulations, data terms.

import chex  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from dip_jax import io, kernels, models  # noqa: E402
from dip_jax.operators import deblurring, inpainting, jpeg  # noqa: E402

LANCZOS2_X4 = [-0.00107, -0.00975, -0.02038, -0.01488, 0.02459, 0.09866, 0.18312, 0.23971]  # REFERENCE §4.1
LANCZOS2_X2 = [-0.00886, -0.04194, 0.11650, 0.43430]


def _linear_operators():
    mask = inpainting.bernoulli_mask(jax.random.key(0), 12, 16, 0.5)
    return {
        "denoise": (operators.Denoising(25.0), (12, 16, 3)),
        "inpaint": (operators.Inpainting(mask), (12, 16, 3)),
        "sr_lanczos2_x2": (operators.SuperResolution(2, "lanczos2"), (12, 16, 3)),
        "sr_lanczos3_x4": (operators.SuperResolution(4, "lanczos3"), (16, 24, 2)),
        "sr_box_x4": (operators.SuperResolution(4, "box"), (16, 16, 1)),
        "sr_gauss_phase0": (operators.SuperResolution(2, "gauss12", phase=0), (12, 16, 3)),
        "sr_lanczos2_phase0": (operators.SuperResolution(2, "lanczos2", phase=0), (12, 16, 3)),
        "jpeg": (operators.JPEGArtifacts(20), (12, 16, 3)),
        "flash": (operators.FlashNoFlash(), (12, 16, 3)),
        "deblur": (operators.Deblurring(operators.gaussian_kernel(1.5)), (12, 16, 3)),
        "deblur_asymmetric": (operators.Deblurring(jnp.asarray(np.arange(15.0).reshape(3, 5) / 105.0)), (12, 16, 3)),
    }


@pytest.mark.parametrize("name", sorted(_linear_operators()))
def test_linear_operators_pass_the_adjoint_test(name):
    op, shape = _linear_operators()[name]
    x = jax.random.normal(jax.random.key(1), shape)
    ax = op.forward(x)
    y = jax.random.normal(jax.random.key(2), ax.shape)
    (aty,) = jax.linear_transpose(op.forward, x)(y)
    chex.assert_shape(aty, shape)
    lhs, rhs = float(jnp.vdot(ax, y)), float(jnp.vdot(x, aty))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)
    # and it is linear: A(2x + y') = 2 A(x) + A(y')
    x2 = jax.random.normal(jax.random.key(3), shape)
    chex.assert_trees_all_close(op.forward(2 * x + x2), 2 * ax + op.forward(x2), atol=1e-5)


# --- Poisson denoising


def test_poisson_noise_has_the_photon_statistics():
    op = operators.Denoising(noise_model="poisson", peak=20.0)
    y = np.asarray(op.simulate(jnp.full((128, 128, 1), 0.5), jax.random.key(0)))
    np.testing.assert_allclose(y.mean(), 0.5, atol=0.01)
    np.testing.assert_allclose(y.var(), 0.5 / 20.0, rtol=0.05)  # var of counts / peak = x / peak
    np.testing.assert_allclose(y * 20, np.round(y * 20), atol=1e-5)  # whole photon counts


def test_poisson_data_term_is_minimal_at_the_observation():
    op = operators.Denoising(noise_model="poisson", peak=10.0)
    y = jnp.asarray([[[0.0], [0.3], [1.0]]])
    assert float(op.data_term(y, y)) == pytest.approx(0.0, abs=1e-4)  # up to the floor on x
    for delta in (-0.05, 0.05):
        assert float(op.data_term(jnp.clip(y + delta, 0.01, 1), y)) > 0
    g = jax.grad(op.data_term)(y + 0.1, y)
    assert bool(jnp.all(jnp.isfinite(g))) and bool(jnp.all(g > 0))  # pulls x down towards y
    with pytest.raises(ValueError, match="unknown noise_model"):
        operators.Denoising(noise_model="laplace")


# --- inpainting masks


def test_mask_semantics_one_is_known():
    mask = jnp.zeros((4, 5, 1)).at[1:3, 1:4].set(1.0)
    op = operators.Inpainting(mask)
    x = jax.random.uniform(jax.random.key(0), (4, 5, 3))
    y = op.simulate(x, jax.random.key(1))
    chex.assert_trees_all_close(y[1:3, 1:4], x[1:3, 1:4])  # known pixels observed in every channel
    assert float(jnp.abs(y[0]).max()) == 0.0 and float(jnp.abs(y[:, 0]).max()) == 0.0
    # the loss ignores the holes and is averaged over all H*W*C entries (REFERENCE §6.17)
    garbage = y.at[0].set(7.0)
    x_hat = jnp.full_like(x, 0.5)
    want = np.sum(((np.asarray(x_hat) - np.asarray(x)) * np.asarray(mask)) ** 2) / x.size
    np.testing.assert_allclose(float(op.data_term(x_hat, garbage)), want, rtol=1e-5)


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_bernoulli_keep_fractions(keep):
    mask = np.asarray(operators.bernoulli_mask(jax.random.key(3), 200, 150, keep))
    chex.assert_shape(mask, (200, 150, 1))
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(mask.mean(), keep, atol=4 * np.sqrt(keep * (1 - keep) / mask.size))
    again = np.asarray(operators.bernoulli_mask(jax.random.key(3), 200, 150, keep))
    np.testing.assert_array_equal(mask, again)
    assert not np.array_equal(mask, np.asarray(operators.bernoulli_mask(jax.random.key(4), 200, 150, keep)))


def test_demo_masks():
    box = operators.box_mask(10, 12, 2, 3, 4, 5)
    assert box.shape == (10, 12, 1) and box.sum() == 120 - 20 and box[2:6, 3:8].max() == 0
    text = operators.text_mask(64, 96)
    assert text.shape == (64, 96, 1) and set(np.unique(text)) == {0.0, 1.0}
    assert 0.02 < 1 - text.mean() < 0.4  # strokes are holes, most pixels stay known


def test_load_mask_refuses_non_binary_and_accepts_binary(tmp_path):
    good = np.zeros((6, 7), np.uint8)
    good[2:, 3:] = 255
    Image.fromarray(good).save(tmp_path / "good.png")
    mask = io.load_mask(str(tmp_path / "good.png"))
    chex.assert_shape(mask, (6, 7, 1))
    np.testing.assert_array_equal(mask[..., 0], good / 255.0)
    bad = good.copy()
    bad[0, 0] = 128
    Image.fromarray(bad).save(tmp_path / "bad.png")
    with pytest.raises(io.ImageError, match="not binary"):
        io.load_mask(str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="mask has shape"):
        inpainting.check_mask(mask, (6, 8, 3))


# --- super-resolution


@pytest.mark.parametrize("factor,taps", [(4, LANCZOS2_X4), (2, LANCZOS2_X2)])
def test_sr_kernel_taps_match_reference(factor, taps):
    """The operator's effective 2-D kernel (its response to an impulse) is the outer product of §4.1's taps."""
    k = len(taps) * 2
    one_d = np.concatenate([taps, taps[::-1]])
    # An impulse in the middle of a large image: the LR pixel whose window is centred on it sees the taps.
    op = operators.SuperResolution(factor, "lanczos2")
    size = 8 * factor
    impulse_response = jax.linear_transpose(op.forward, jnp.zeros((size, size, 1)))
    lr = jnp.zeros((size // factor, size // factor, 1)).at[4, 4, 0].set(1.0)
    (kernel_hr,) = impulse_response(lr)  # the adjoint spreads one LR pixel back as its kernel
    pad = kernels.preserve_size_pad(k, factor)
    top = 4 * factor - pad
    window = np.asarray(kernel_hr[top : top + k, top : top + k, 0])
    np.testing.assert_allclose(window, np.outer(one_d, one_d), atol=1e-4)
    np.testing.assert_allclose(np.asarray(kernel_hr).sum(), 1.0, atol=1e-5)


@pytest.mark.parametrize("kernel_type,phase", [("lanczos2", 0.5), ("lanczos3", 0.5), ("box", 0.5), ("gauss12", 0)])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_sr_shapes_and_constant_images(kernel_type, phase, factor):
    op = operators.SuperResolution(factor, kernel_type, phase)
    h, w = 3 * factor, 5 * factor  # odd multiples: 3 and 5 LR pixels
    y = op.forward(jnp.full((h, w, 3), 0.37))
    chex.assert_shape(y, (3, 5, 3))
    chex.assert_trees_all_close(y, jnp.full((3, 5, 3), 0.37), atol=1e-5)
    assert op.output_shape((3, 5, 3)) == (h, w, 3)


def test_sr_factor_must_divide_the_size():
    op = operators.SuperResolution(4)
    with pytest.raises(ValueError, match="does not divide the image size 30x32"):
        op.simulate(jnp.zeros((30, 32, 3)), jax.random.key(0))
    with pytest.raises(ValueError, match="does not divide"):
        op.forward(jnp.zeros((32, 30, 3)))
    with pytest.raises(ValueError, match="unknown kernel type"):
        operators.SuperResolution(2, "bicubic")


def test_sr_simulation_and_baseline_are_pils(photo64):
    op = operators.SuperResolution(4)
    lr = np.asarray(op.simulate(jnp.asarray(photo64), jax.random.key(0)))
    chex.assert_shape(lr, (16, 16, 3))
    u8 = np.round(photo64 * 255).astype(np.uint8)
    want = np.asarray(Image.fromarray(u8).resize((16, 16), Image.LANCZOS)) / 255.0
    np.testing.assert_allclose(lr, want, atol=1e-6)
    up = np.asarray(op.baseline(jnp.asarray(lr)))
    chex.assert_shape(up, (64, 64, 3))
    want_up = np.asarray(Image.fromarray(np.round(lr * 255).astype(np.uint8)).resize((64, 64), Image.BICUBIC))
    np.testing.assert_allclose(up, want_up / 255.0, atol=1e-6)
    # gray images go through Pillow's 'L' mode
    chex.assert_shape(op.simulate(jnp.asarray(photo64[..., :1]), jax.random.key(0)), (16, 16, 1))


# --- JPEG, flash, deblurring


def test_jpeg_simulation_is_pillow_jpeg(photo64):
    op = operators.JPEGArtifacts(10)
    y = np.asarray(op.simulate(jnp.asarray(photo64), jax.random.key(0)))
    chex.assert_shape(y, photo64.shape)
    err_low = np.mean((y - photo64) ** 2)
    err_high = np.mean((np.asarray(operators.JPEGArtifacts(90).simulate(jnp.asarray(photo64), None)) - photo64) ** 2)
    assert err_high < err_low / 4 and err_low > 1e-4
    np.testing.assert_array_equal(op.forward(jnp.asarray(y)), y)
    with pytest.raises(ValueError, match="quality"):
        operators.JPEGArtifacts(0)
    chex.assert_shape(jpeg.jpeg_roundtrip(photo64[..., :1], 50), (64, 64, 1))


def test_flash_is_identity_and_checks_the_pair():
    op = operators.FlashNoFlash()
    x = jnp.ones((4, 4, 3))
    np.testing.assert_array_equal(op.forward(x), x)
    with pytest.raises(ValueError, match="flash image is"):
        operators.flash.check_flash_pair((4, 4, 3), (4, 5, 3))


def test_deblurring_blurs_keeps_constants_and_simulates_noise(photo64):
    k = operators.gaussian_kernel(2.0)
    assert k.shape == (13, 13) and abs(k.sum() - 1) < 1e-6
    op = operators.Deblurring(k, noise_sigma=2.0)
    chex.assert_trees_all_close(op.forward(jnp.full((9, 10, 3), 0.4)), jnp.full((9, 10, 3), 0.4), atol=1e-6)
    blurred = op.forward(jnp.asarray(photo64))
    chex.assert_shape(blurred, photo64.shape)
    assert float(jnp.var(jnp.diff(blurred, axis=0))) < 0.5 * float(np.var(np.diff(photo64, axis=0)))
    y = op.simulate(jnp.asarray(photo64), jax.random.key(0))
    np.testing.assert_allclose(float(jnp.std(y - blurred)), 2 / 255, rtol=0.1)
    # a shifted delta kernel shifts the image: a convolution, not a correlation
    delta = np.zeros((3, 3), np.float32)
    delta[1, 2] = 1.0  # output(i, j) = input(i, j - 1)
    shifted = operators.Deblurring(delta).forward(jnp.asarray(photo64))
    chex.assert_trees_all_close(shifted[:, 1:], jnp.asarray(photo64)[:, :-1], atol=1e-6)
    with pytest.raises(ValueError, match="odd sides"):
        deblurring.check_kernel(np.ones((2, 2)) / 4)


# --- regularisers and the pixel-space net


def test_total_variation_value_and_gradient_at_zero():
    x = jnp.zeros((3, 3, 1)).at[0, 1, 0].set(3.0).at[1, 0, 0].set(4.0)
    # over the 2x2 grid of forward differences: (0, 0): dx = 3, dy = 4 -> 5; (0, 1): dx = -3, dy = -3 -> sqrt(18);
    # (1, 0): dx = -4, dy = -4 -> sqrt(32); (1, 1): 0
    want = 5.0 + np.sqrt(18.0) + np.sqrt(32.0)
    np.testing.assert_allclose(float(operators.total_variation(x)), want, rtol=1e-6)
    g = jax.grad(operators.total_variation)(jnp.zeros((4, 4, 3)))
    chex.assert_tree_all_finite(g)
    np.testing.assert_array_equal(g, 0.0)  # the minimum-norm subgradient, not NaN


def test_total_variation_with_the_activation_maximisation_exponent():
    x = jnp.zeros((3, 3, 1)).at[0, 1, 0].set(3.0).at[1, 0, 0].set(4.0)
    # the same differences as above, (dx² + dy²)² summed: 25² + 18² + 32² + 0
    np.testing.assert_allclose(float(operators.total_variation(x, beta=2.0)), 625.0 + 324.0 + 1024.0, rtol=1e-6)
    op = operators.Regularized(operators.Denoising(), tv_weight=0.5, tv_beta=2.0)
    y = jnp.zeros((3, 3, 1))
    np.testing.assert_allclose(float(op.data_term(x, y)), float(jnp.mean(x**2)) + 0.5 * 1973.0, rtol=1e-6)
    np.testing.assert_array_equal(jax.grad(lambda v: operators.total_variation(v, 2.0))(jnp.zeros((4, 4, 3))), 0.0)


def test_regularized_adds_weighted_tv_and_delegates():
    base = operators.SuperResolution(2)
    op = operators.Regularized(base, tv_weight=0.5)
    x = jax.random.uniform(jax.random.key(0), (8, 8, 3))
    y = base.forward(x) + 0.1
    np.testing.assert_allclose(float(op.data_term(x, y)),
                               float(base.data_term(x, y) + 0.5 * operators.total_variation(x)), rtol=1e-6)
    assert op.output_shape((4, 4, 3)) == (8, 8, 3)
    chex.assert_trees_all_close(op.forward(x), base.forward(x))


def test_pixel_image_net_returns_its_parameter():
    net = models.get("pixels", num_input_channels=3, num_output_channels=3)
    z = jax.random.uniform(jax.random.key(0), (1, 6, 7, 3)) * 0.1
    params = net.init(jax.random.key(1), z)["params"]
    chex.assert_trees_all_close(params["image"], z)
    other = jnp.ones_like(z)
    chex.assert_trees_all_close(net.apply({"params": params}, other), z)  # the input no longer matters
    assert models.num_params(net, z.shape) == z.size
