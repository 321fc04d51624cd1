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
