import imageio.v3 as iio
import numpy as np
import pytest

from dip_jax import io


def test_8bit_rgb_round_trip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", a)
    x = io.load_image(str(tmp_path / "a.png"))
    assert x.dtype == np.float32 and x.shape == (5, 7, 3)
    np.testing.assert_allclose(x, a / 255.0, rtol=1e-6)
    io.save_image(str(tmp_path / "b.png"), x)
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.png"), a)


def test_16bit_gray_and_rgba(tmp_path):
    g = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    iio.imwrite(tmp_path / "g.png", g)
    x = io.load_image(str(tmp_path / "g.png"))
    assert x.shape == (2, 2, 1)
    np.testing.assert_allclose(x[..., 0], g / 65535.0, rtol=1e-6)
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    iio.imwrite(tmp_path / "rgba.png", rgba)
    y = io.load_image(str(tmp_path / "rgba.png"))
    assert y.shape == (3, 3, 3)
    np.testing.assert_allclose(y[..., 0], 1.0)


def test_gray_saves_as_gray(tmp_path):
    io.save_image(str(tmp_path / "g.png"), np.full((4, 4, 1), 0.5, np.float32))
    assert iio.imread(tmp_path / "g.png").shape == (4, 4)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(io.ImageError, match="no such image file"):
        io.load_image(str(tmp_path / "nope.png"))
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(io.ImageError, match="cannot read"):
        io.load_image(str(tmp_path / "bad.png"))


def test_nan_is_rejected():
    with pytest.raises(io.ImageError, match="NaN"):
        io.to_float(np.array([[np.nan, 0.0]], np.float32))


@pytest.mark.parametrize("size,multiple,want", [(30, 8, (1, 1)), (32, 8, (0, 0)), (33, 32, (15, 16)), (5, 1, (0, 0))])
def test_pad_amounts(size, multiple, want):
    assert io.pad_amounts(size, multiple) == want
    assert (size + sum(want)) % multiple == 0


def test_default_image_is_a_real_photo():
    x = io.default_image(128)
    assert x.shape == (128, 128, 3) and x.dtype == np.float32
    assert 0.1 < x.std() < 0.5  # a photo, not a constant


def test_resize_is_the_originals_get_image():
    """Pillow's bicubic to enlarge and antialiased Lanczos to shrink, on the 8-bit image; gray stays gray."""
    from PIL import Image

    photo = io.default_image(64)
    as_8bit = io.to_uint8(photo)
    for size, resample in ((100, Image.BICUBIC), (40, Image.LANCZOS)):
        want = np.asarray(Image.fromarray(as_8bit).resize((size, size), resample), np.float32) / 255
        np.testing.assert_array_equal(io.resize(photo, size, size), want)
    np.testing.assert_array_equal(io.resize(photo, 64, 64), photo)
    assert io.resize(photo[..., :1], 32, 48).shape == (32, 48, 1)


def test_jpegs_are_read_as_viewers_show_them(tmp_path):
    """EXIF orientation applied; CMYK converted to RGB (not read as RGB + alpha)."""
    from PIL import Image

    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[:4, :, 0] = 255  # red on top
    rgb[4:, :, 2] = 255  # blue below
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    x = io.load_image(str(tmp_path / "rotated.jpg"))
    assert x.shape == (12, 8, 3)  # shown upright: portrait
    assert x[:, :3, 2].mean() > 0.8 and x[:, -3:, 0].mean() > 0.8  # blue on the left, red on the right

    image.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    y = io.load_image(str(tmp_path / "cmyk.jpg"))
    assert y.shape == (8, 12, 3)
    np.testing.assert_allclose(y, rgb / 255.0, atol=0.1)


def test_16bit_colour_png_keeps_its_16_bits(tmp_path):
    import png

    a = np.random.default_rng(0).integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    with open(tmp_path / "rgb16.png", "wb") as f:
        png.Writer(width=7, height=5, bitdepth=16, greyscale=False).write(f, a.reshape(5, -1))
    x = io.load_image(str(tmp_path / "rgb16.png"))
    np.testing.assert_allclose(x, a / 65535.0, rtol=1e-6)  # 8 bits would be off by up to 255/65535
    assert np.abs(x * 65535 - a).max() < 0.01


def test_errors_name_the_file_and_call_a_directory_a_directory(tmp_path):
    with pytest.raises(io.ImageError, match=f"{tmp_path} is a directory"):
        io.load_image(str(tmp_path))
    (tmp_path / "notes.png").write_text("plain text")
    with pytest.raises(io.ImageError, match="cannot read .*notes.png as an image") as e:
        io.load_image(str(tmp_path / "notes.png"))
    assert "plugin" not in str(e.value) and "install" not in str(e.value)
    iio.imwrite(tmp_path / "float.tif", np.array([[np.nan, 0.5]], np.float32))
    with pytest.raises(io.ImageError, match="float.tif: the image contains NaN"):
        io.load_image(str(tmp_path / "float.tif"))
