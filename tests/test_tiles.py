"""dip_jax.tiles: the grid covers the image, blending tiles that agree gives the image back, no seams."""

import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, smooth_image, tiny_skip

from dip_jax import ensemble, fit, operators, tiles
from dip_jax.restore import InputConfig


@pytest.mark.parametrize("height,width,tile,overlap", [(37, 53, 16, 4), (64, 64, 32, 8), (20, 90, 32, 6),
                                                       (16, 16, 32, 4), (33, 17, 8, 0)])
def test_cut_and_blend_reconstruct_the_image(height, width, tile, overlap):
    """When every tile's 'fit' is the identity, blending gives the image back exactly."""
    x = jax.random.uniform(jax.random.key(0), (height, width, 3))
    grid = tiles.TileGrid(height, width, tile, overlap)
    pieces = tiles.cut(x, grid)
    chex.assert_shape(pieces, (len(grid), *grid.tile_shape, 3))
    covered = np.zeros((height, width), int)
    for rows, cols in grid.windows():
        covered[rows, cols] += 1
    assert covered.min() >= 1  # every pixel in some tile
    for axis in (0, 1):  # neighbours overlap by at least `overlap`, evenly spread
        starts = sorted({w[axis].start for w in grid.windows()})
        steps = np.diff(starts)
        if len(starts) > 1:
            assert steps.max() <= grid.tile_shape[axis] - overlap and steps.max() - steps.min() <= 1
    chex.assert_trees_all_close(tiles.blend(pieces, grid), x, atol=1e-6)


def test_super_resolution_tiles_are_cut_on_the_low_resolution_grid():
    op = operators.SuperResolution(4)
    grid = tiles.grid_for((13, 22, 3), op.output_shape((13, 22, 3)), tile=32, overlap=8)
    assert (grid.tile, grid.overlap, grid.scale) == (8, 2, 4)
    for (lr_rows, lr_cols), (hr_rows, hr_cols) in zip(grid.windows(), grid.windows(4), strict=True):
        assert (hr_rows.start, hr_rows.stop) == (4 * lr_rows.start, 4 * lr_rows.stop)
        assert (hr_cols.start, hr_cols.stop) == (4 * lr_cols.start, 4 * lr_cols.stop)
    hr = jax.random.uniform(jax.random.key(1), (52, 88, 3))
    chex.assert_trees_all_close(tiles.blend(tiles.cut(hr, grid, 4), grid), hr, atol=1e-6)
    with pytest.raises(ValueError, match="multiples of the factor 4"):
        tiles.grid_for((13, 22, 3), (52, 88, 3), tile=30, overlap=8)


def test_blending_windows_leave_no_seam():
    """Tiles that each differ by a constant blend into an image without a step at the boundaries."""
    x = smooth_image(96)
    grid = tiles.TileGrid(96, 96, 40, 16)
    pieces = tiles.cut(x, grid) + jnp.arange(len(grid), dtype=jnp.float32)[:, None, None, None] * 0.02
    blended = tiles.blend(pieces, grid)
    assert tiles.seam_ratio(x, grid) == pytest.approx(1.0, abs=0.15)
    assert tiles.seam_ratio(blended, grid) < 1.5
    hard = jnp.asarray(x)  # the same offsets pasted without blending: a visible step
    for (rows, cols), piece in zip(grid.windows(), pieces, strict=True):
        hard = hard.at[rows, cols].set(piece)
    assert tiles.seam_ratio(hard, grid) > 2 * tiles.seam_ratio(blended, grid)


def test_operators_know_what_a_tile_is():
    mask = jnp.asarray(np.random.default_rng(0).random((20, 30, 1)) > 0.5, jnp.float32)
    window = (slice(4, 12), slice(10, 25))
    chex.assert_trees_all_equal(operators.Inpainting(mask).tile(window).mask, mask[4:12, 10:25])
    regularized = operators.Regularized(operators.Inpainting(mask), 0.1).tile(window)
    chex.assert_trees_all_equal(regularized.base.mask, mask[4:12, 10:25])
    assert operators.Denoising(25.0).tile(window) == operators.Denoising(25.0)
    assert operators.SuperResolution(4).tile_margin() == 2  # lanczos2 at x4 reaches 2 LR pixels out
    assert operators.Deblurring(jnp.asarray(operators.gaussian_kernel(2.0))).tile_margin() == 6
    with pytest.raises(NotImplementedError, match="FlashNoFlash cannot be restored in tiles"):
        operators.FlashNoFlash().tile(window)


def test_images_with_their_own_operators_fit_as_separately():
    """A list of operators (one per image, as for tiles) gives each image the fit it would have alone."""
    net = tiny_skip()
    rng = np.random.default_rng(1)
    observations = [jnp.asarray(rng.random((16, 16, 3)), jnp.float32) for _ in range(2)]
    masks = [jnp.asarray(rng.random((16, 16, 1)) > 0.3, jnp.float32) for _ in range(2)]
    ops = [operators.Inpainting(m) for m in masks]
    keys = ensemble.seed_keys(jax.random.key(3), 2)
    config = fit.FitConfig(num_iter=3)
    code = InputConfig("noise", 4)
    for method in ("sequential", "vmap"):
        together = ensemble.fit_images(observations, ops, net, config, keys, input_config=code, method=method)
        for obs, op, result in zip(observations, ops, together, strict=True):
            alone = ensemble.fit_seeds(obs, op, net, config, keys, input_config=code, method="sequential")
            # the same step one image after the other; vmapped, grouped convolutions round differently
            chex.assert_trees_all_close(result.finals, alone.finals, atol=1e-6 if method == "sequential" else 1e-4)
    with pytest.raises(ValueError, match="1 operators for 2 observations"):
        ensemble.fit_images(observations, ops[:1], net, config, keys, input_config=code)


TILED_ON_TWO_DEVICES = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    import dip_jax, jax, jax.numpy as jnp, numpy as np
    from conftest import tiny_skip
    from dip_jax import ensemble, fit, operators, tiles
    from dip_jax.restore import InputConfig
    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.random((40, 40, 3)), jnp.float32)
    mask = jnp.asarray(rng.random((40, 40, 1)) > 0.3, jnp.float32)
    grid = tiles.TileGrid(40, 40, 24, 8)
    windows = grid.windows()
    ops = [operators.Inpainting(mask).tile(w) for w in windows]
    obs = list(tiles.cut(image * mask, grid))
    keys = ensemble.seed_keys(jax.random.key(0), 1)
    cfg = fit.FitConfig(num_iter=3)
    run = lambda method, devices: ensemble.fit_images(obs, ops, tiny_skip(), cfg, keys,
                                                      input_config=InputConfig("noise", 4),
                                                      method=method, devices=devices)
    sharded, one_by_one = run("vmap", jax.devices()), run("sequential", jax.devices()[:1])
    for a, b in zip(sharded, one_by_one):
        np.testing.assert_allclose(a.finals, b.finals, atol=1e-4)
    print("TILED_OK", len(obs))
""")


def test_tiles_on_two_devices_equal_the_tiles_fitted_one_by_one():
    """The tiles of one image vmapped and sharded over 2 (fake CPU) devices: the same fits as one by one."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", TILED_ON_TWO_DEVICES], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert "TILED_OK 4" in r.stdout, r.stderr[-3000:]
