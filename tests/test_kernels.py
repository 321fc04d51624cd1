import numpy as np
import pytest

from dip_jax import kernels

# REFERENCE §4.1: the 1-D factors of the lanczos2 kernels (first half; the rest mirrors).
LANCZOS2_X4 = [-0.00107, -0.00975, -0.02038, -0.01488, 0.02459, 0.09866, 0.18312, 0.23971]
LANCZOS2_X2 = [-0.00886, -0.04194, 0.11650, 0.43430]


@pytest.mark.parametrize("factor,taps", [(4, LANCZOS2_X4), (2, LANCZOS2_X2)])
def test_lanczos2_taps_match_reference(factor, taps):
    k = kernels.kernel_1d(factor, "lanczos2")
    assert k.shape == (2 * len(taps),)
    np.testing.assert_allclose(k[: len(taps)], taps, atol=6e-6)
    np.testing.assert_allclose(k, k[::-1])


@pytest.mark.parametrize("kernel_type,factor,size", [("lanczos2", 8, 32), ("lanczos3", 2, 12), ("lanczos3", 4, 24)])
def test_phase_half_kernel_sizes_and_sum(kernel_type, factor, size):
    k2 = kernels.kernel_2d(factor, kernel_type)
    assert k2.shape == (size, size)
    np.testing.assert_allclose(k2.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(k2, k2.T)


def test_lanczos_window_closed_form():
    # L(d) = a sin(pi d) sin(pi d / a) / (pi^2 d^2), with L(0) = 1 and zeros at the integers.
    d = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    got = kernels._lanczos(d, 2)
    want = [1.0, 2 * np.sin(np.pi / 2) * np.sin(np.pi / 4) / (np.pi**2 * 0.25), 0.0, None, 0.0]
    np.testing.assert_allclose(got[[0, 1, 2, 4]], np.array(want)[[0, 1, 2, 4]].astype(float), atol=1e-12)
    assert got[3] < 0  # the negative lobe


def test_box_and_gauss():
    np.testing.assert_allclose(kernels.kernel_1d(4, "box"), np.full(4, 0.25))
    g = kernels.kernel_1d(2, "gauss12", phase=0)
    assert g.shape == (7,) and np.argmax(g) == 3
    np.testing.assert_allclose(g.sum(), 1.0)


def test_preserve_size_padding():
    assert kernels.preserve_size_pad(16, 4) == 6
    assert kernels.preserve_size_pad(32, 8) == 12
    assert kernels.preserve_size_pad(8, 2) == 3
    assert kernels.preserve_size_pad(7, 2) == 3


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="unknown kernel type"):
        kernels.kernel_1d(2, "bicubic")
    with pytest.raises(ValueError, match="half-phased"):
        kernels.kernel_1d(2, "box", phase=0)
