"""Reading and writing images, and padding to a size the net accepts.

Everything in memory is float32 HWC in [0, 1]: 8-bit data is divided by 255 and 16-bit by
65535 (REFERENCE §6.8); gray images are H x W x 1; RGBA is reduced to RGB by dropping alpha
(what PIL's `convert('RGB')` in the original does).
"""

from __future__ import annotations

import os
from typing import Tuple

import imageio.v3 as iio
import numpy as np


class ImageError(ValueError):
    """A file that cannot be used as an image (missing, unreadable, wrong layout)."""


def to_float(array: np.ndarray) -> np.ndarray:
    """An integer or float image array as float32 HWC in [0, 1]."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    else:
        raise ImageError(f"unsupported pixel type {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"expected a gray, RGB or RGBA image, got an array of shape {a.shape}")
    if a.shape[-1] == 4:
        a = a[:, :, :3]
    elif a.shape[-1] == 2:  # gray + alpha
        a = a[:, :, :1]
    if not np.all(np.isfinite(a)):
        raise ImageError("the image contains NaN or infinite values")
    return a


# PNG colour types (IHDR byte 25) that Pillow reads at 8 bits even when the file has 16: RGB and RGBA.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_16BIT_TRUNCATED = (2, 6)


def _png_16bit_colour(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[:8] == _PNG_SIGNATURE and head[24] == 16 and head[25] in _PNG_COLOUR_16BIT_TRUNCATED


def _read_png_16bit(path: str) -> np.ndarray:
    """A 16-bit RGB(A) PNG at its full depth (pypng; Pillow would return it at 8 bits)."""
    import png

    width, height, rows, info = png.Reader(filename=path).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, planes)


def _read_with_pillow(path: str) -> np.ndarray:
    """The first frame as a viewer shows it: EXIF orientation applied, CMYK and palettes converted to RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("CMYK", "YCbCr", "LAB", "HSV", "P", "PA", "RGBX", "RGBa"):
            image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        elif image.mode == "1":
            image = image.convert("L")
        return np.asarray(image)


def load_image(path: str) -> np.ndarray:
    """Read an image file as float32 HWC in [0, 1], as an image viewer shows it, at its full bit depth.

    JPEGs are turned by their EXIF orientation and CMYK ones converted to RGB (Pillow);
    16-bit PNGs keep their 16 bits (pypng for colour ones, which Pillow reads at 8); TIFFs and
    other formats Pillow does not read go through imageio (tifffile keeps 16-bit TIFFs whole).
    """
    if os.path.isdir(path):
        raise ImageError(f"{path} is a directory, not an image file")
    if not os.path.isfile(path):
        raise ImageError(f"no such image file: {path}")
    try:
        if _png_16bit_colour(path):
            array = _read_png_16bit(path)
        elif path.lower().endswith((".tif", ".tiff")):
            array = iio.imread(path)
        else:
            array = _read_with_pillow(path)
    except Exception as e:  # the readers raise many types for files that are not images
        raise ImageError(f"cannot read {path} as an image ({type(e).__name__})") from None
    if array.ndim == 4:  # multi-frame files: take the first frame
        array = array[0]
    try:
        return to_float(array)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None


def to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image(path: str, image: np.ndarray) -> None:
    """Write an HWC [0, 1] image as 8-bit (clipped and rounded; 1 channel saved as gray)."""
    a = to_uint8(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[:, :, 0]
    iio.imwrite(path, a)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An HWC [0, 1] image resized to height x width as the original's `get_image`: Pillow's bicubic
    filter to enlarge, its antialiased Lanczos to shrink; the 8-bit image is what Pillow resizes."""
    from PIL import Image

    a = to_uint8(image)
    if a.shape[:2] == (height, width):
        return np.asarray(image, np.float32)
    gray = a.shape[-1] == 1
    pil = Image.fromarray(a[..., 0] if gray else a)
    resample = Image.BICUBIC if width > a.shape[1] else Image.LANCZOS
    out = np.asarray(pil.resize((width, height), resample), np.float32) / 255.0
    return out[..., None] if gray else out


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if height > h or width > w:
        raise ValueError(f"cannot crop {h}x{w} to {height}x{width}")
    top, left = (h - height) // 2, (w - width) // 2
    return image[top : top + height, left : left + width]


def pad_amounts(size: int, multiple: int) -> Tuple[int, int]:
    """(before, after) padding that brings `size` to the next multiple, split evenly."""
    total = -size % multiple
    return total // 2, total - total // 2


def padded_window(height: int, width: int, multiple: int) -> Tuple[int, int, int, int]:
    """(padded height, padded width, top, left) for an image padded to a multiple."""
    top, bottom = pad_amounts(height, multiple)
    left, right = pad_amounts(width, multiple)
    return height + top + bottom, width + left + right, top, left


def default_image(size: int = 256) -> np.ndarray:
    """A real photo that ships with scikit-image: a centre crop of `astronaut()`.

    The crop centres on the face and the flag, where fine texture makes the gain of
    denoising visible.
    """
    from skimage import data  # a test/demo dependency only where no image is given

    photo = to_float(data.astronaut())
    if size > 512:
        raise ValueError("the default photo is 512x512")
    top = min(max(0, 160 - size // 2), 512 - size)  # the face lies around row 160, column 200
    left = min(max(0, 200 - size // 2), 512 - size)
    return photo[top : top + size, left : left + size]


def load_mask(path: str) -> np.ndarray:
    """A binary mask file as float32 (H, W, 1) with 1 = known pixel (white), 0 = missing.

    The original reads masks as PNG / 255 (REFERENCE §6.8); a mask with values other than
    black and white (e.g. a JPEG-compressed or anti-aliased one) is refused rather than
    thresholded silently. RGB masks are accepted when their channels agree.
    """
    mask = load_image(path)
    if mask.shape[-1] == 3:
        if not np.array_equal(mask[..., :1], mask[..., 1:2]) or not np.array_equal(mask[..., :1], mask[..., 2:]):
            raise ImageError(f"the mask {path} has differing RGB channels; expected a black-and-white mask")
        mask = mask[..., :1]
    values = np.unique(mask)
    if not np.all(np.isin(values, (0.0, 1.0))):
        raise ImageError(
            f"the mask {path} is not binary: it has {len(values)} distinct values; expected only 0 (missing) and "
            "255 (known)"
        )
    return mask
