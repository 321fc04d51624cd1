import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dip_jax import metrics


def test_psnr_closed_form():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(16, 16, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    want = 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))
    np.testing.assert_allclose(float(metrics.psnr(b, a)), want, rtol=1e-5)
    # a constant error e gives exactly -20 log10(e)
    np.testing.assert_allclose(float(metrics.psnr(a * 0 + 0.6, a * 0 + 0.5)), 20.0, rtol=1e-5)


def test_ssim_matches_scikit_image(photo64):
    rng = np.random.default_rng(1)
    noisy = np.clip(photo64 + rng.normal(0, 0.1, photo64.shape), 0, 1).astype(np.float32)
    want = structural_similarity(photo64, noisy, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False)
    # dm-pix's window is valid-mode while scikit-image crops a border afterwards; both close
    np.testing.assert_allclose(float(metrics.ssim(noisy, photo64)), want, atol=0.01)
    np.testing.assert_allclose(float(metrics.ssim(photo64, photo64)), 1.0, rtol=1e-5)


def test_ssim_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 1)))


def test_psnr_y_with_border_shave_by_hand():
    rng = np.random.default_rng(2)
    ref = rng.uniform(size=(20, 24, 3)).astype(np.float32)
    x = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    x[:4] = 0.0  # damage in the shaved border (4 px top/left, 5 px bottom/right) must not count
    x[-5:] = 1.0
    x[:, :4] = 0.0
    x[:, -5:] = 1.0

    def luma(a):  # REFERENCE §4.3, written out
        return (219.0 * (0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]) + 16.0) / 255.0

    d = luma(x.astype(np.float64))[4:15, 4:19] - luma(ref.astype(np.float64))[4:15, 4:19]
    want = 10 * np.log10(1.0 / np.mean(d**2))
    np.testing.assert_allclose(float(metrics.psnr_y(x, ref)), want, rtol=1e-5)
    assert float(metrics.psnr_y(x, ref, shave=0)) < want - 3  # the border is what was damaged
    # white maps to the top of the studio range, 235/255, as MATLAB rgb2ycbcr
    np.testing.assert_allclose(float(metrics.rgb_to_y(np.ones((1, 1, 3)))[0, 0]), 235 / 255, rtol=1e-6)
    gray = ref[..., :1]
    np.testing.assert_allclose(float(metrics.psnr_y(np.repeat(gray, 3, -1), np.repeat(gray * 0.9, 3, -1))),
                               float(metrics.psnr_y(gray, gray * 0.9)), rtol=1e-5)
    with pytest.raises(ValueError, match="too small"):
        metrics.psnr_y(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
