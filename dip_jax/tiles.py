"""Restoring a large image in overlapping tiles of one shape, blended back without seams.

A `TileGrid` places tiles of one shape over the observation (the grid an operator is given)
and, scaled by the operator's output/observation ratio (the SR factor), over the restored
image. Each tile is a DIP fit of its own: tiles of one shape are "several images of one
shape", so `ensemble.fit_images` fits them (one after the other on a CPU, vmapped and sharded
on accelerators) with a per-tile operator (`Operator.tile`). `blend` puts the restored tiles
back with a smooth window: inside the overlaps a raised-cosine ramp hands one tile over to the
next, so no seam shows, and the weights are normalised so that tiles that agree reconstruct
the image exactly.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: as few tiles as overlap by at least `overlap`, spread evenly.

    The first starts at 0 and the last ends with the image; between them the step is at most
    tile - overlap, the same for all (to a pixel), so no pair of tiles overlaps much more than another.
    """
    if size <= tile:
        return [0]
    count = math.ceil((size - tile) / (tile - overlap)) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Tiles of `tile` x `tile` observation pixels (less where the image is smaller), overlapping by `overlap`.

    `scale` is the restored image's pixels per observation pixel (the SR factor; 1 otherwise).
    """

    height: int  # of the observation
    width: int
    tile: int
    overlap: int
    scale: int = 1

    def __post_init__(self):
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise ValueError(f"a tile needs 0 <= overlap < tile, got tile {self.tile} and overlap {self.overlap}")

    @property
    def tile_shape(self) -> tuple[int, int]:
        return min(self.tile, self.height), min(self.tile, self.width)

    @property
    def origins(self) -> list[tuple[int, int]]:
        """(top, left) of each tile on the observation grid, row by row."""
        th, tw = self.tile_shape
        return [(t, s) for t in _starts(self.height, th, self.overlap) for s in _starts(self.width, tw, self.overlap)]

    def __len__(self) -> int:
        return len(self.origins)

    def windows(self, scale: int = 1) -> list[tuple[slice, slice]]:
        """Each tile's (rows, columns) on the grid `scale` times finer (1: the observation's)."""
        th, tw = self.tile_shape
        return [(slice(t * scale, (t + th) * scale), slice(s * scale, (s + tw) * scale)) for t, s in self.origins]


def grid_for(observation_shape, output_shape, tile: int, overlap: int) -> TileGrid:
    """The grid of tiles of `tile` restored pixels overlapping by `overlap`, on the observation's grid.

    For SR the tiles are cut from the low-resolution image on boundaries that are multiples of
    the factor: `tile` and `overlap` must be multiples of it.
    """
    scale = output_shape[0] // observation_shape[0]
    if tile % scale or overlap % scale:
        raise ValueError(f"the tile ({tile}) and its overlap ({overlap}) must be multiples of the factor {scale}")
    return TileGrid(observation_shape[0], observation_shape[1], tile // scale, overlap // scale, scale)


def cut(image: jax.Array, grid: TileGrid, scale: int = 1) -> jax.Array:
    """The tiles of an HWC image (the observation: scale 1; the restored image: grid.scale) as (T, h, w, C)."""
    return jnp.stack([image[rows, cols] for rows, cols in grid.windows(scale)])


def _ramp(length: int, overlap: int, rising: bool, falling: bool) -> np.ndarray:
    """1 inside; a raised cosine over `overlap` pixels at each side that meets a neighbour."""
    w = np.ones(length, np.float64)
    if overlap:
        r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)  # in (0, 1), never 0
        if rising:
            w[:overlap] = r
        if falling:
            w[length - overlap:] = np.minimum(w[length - overlap:], r[::-1])
    return w


def weights(grid: TileGrid) -> np.ndarray:
    """Each tile's blending window on the restored grid, (T, h, w, 1), before normalisation."""
    th, tw = grid.tile_shape
    oh = ow = grid.overlap * grid.scale
    h, w = grid.height, grid.width
    out = []
    for t, s in grid.origins:
        rows = _ramp(th * grid.scale, min(oh, th * grid.scale), t > 0, t + th < h)
        cols = _ramp(tw * grid.scale, min(ow, tw * grid.scale), s > 0, s + tw < w)
        out.append(np.outer(rows, cols)[..., None])
    return np.stack(out).astype(np.float32)


def blend(tiles: jax.Array, grid: TileGrid) -> jax.Array:
    """The restored image from its restored tiles (T, h, w, C): the window-weighted mean at every pixel."""
    w = jnp.asarray(weights(grid))
    h, wd = grid.height * grid.scale, grid.width * grid.scale
    total = jnp.zeros((h, wd, tiles.shape[-1]), tiles.dtype)
    norm = jnp.zeros((h, wd, 1), tiles.dtype)
    for (rows, cols), tile, weight in zip(grid.windows(grid.scale), tiles, w, strict=True):
        total = total.at[rows, cols].add(weight * tile)
        norm = norm.at[rows, cols].add(weight)
    return total / norm


def seam_ratio(image: jax.Array, grid: TileGrid) -> float:
    """Mean gradient magnitude on the pixels next to a tile boundary, over that elsewhere (1: no seam).

    A boundary is where a tile starts or ends inside the image, on the restored grid.
    """
    x = np.asarray(image, np.float64)
    gy = np.abs(np.diff(x, axis=0)).mean(axis=-1)  # (H-1, W): between row i and i+1
    gx = np.abs(np.diff(x, axis=1)).mean(axis=-1)
    h, w = x.shape[:2]
    rows = {r for rs, _ in grid.windows(grid.scale) for r in (rs.start, rs.stop) if 0 < r < h}
    cols = {c for _, cs in grid.windows(grid.scale) for c in (cs.start, cs.stop) if 0 < c < w}
    at_rows = np.zeros(gy.shape, bool)
    at_rows[[r - 1 for r in rows], :] = True
    at_cols = np.zeros(gx.shape, bool)
    at_cols[:, [c - 1 for c in cols]] = True
    boundary = np.concatenate([gy[at_rows], gx[at_cols]])
    rest = np.concatenate([gy[~at_rows], gx[~at_cols]])
    if not boundary.size or not rest.size or rest.mean() == 0:
        return 1.0
    return float(boundary.mean() / rest.mean())
