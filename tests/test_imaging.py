"""Decoding the uploads people really bring: every mode, orientation and broken file."""

from __future__ import annotations

import io
import logging
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile

from pulse_core.imaging import (
    ImageDecodeError,
    center_crop_square,
    decode_image,
    save_png,
    to_pil,
    to_uint8_array,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels but which carries no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def rgb(tensor: torch.Tensor, y: int, x: int) -> tuple[int, ...]:
    return tuple(round(float(v) * 255) for v in tensor[:, y, x])


def test_rgb_png_round_trips_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    image = decode_image(path)
    assert image.dtype == torch.float32 and image.shape == (3, 5, 7)
    assert np.array_equal(to_uint8_array(image), pixels)


@pytest.mark.parametrize(
    ("orientation", "shape", "red_at", "blue_at"),
    [
        (3, (3, 8, 16), (4, 12), (4, 3)),  # 180 degrees: the red left half moves right
        (6, (3, 16, 8), (3, 4), (12, 4)),  # 90 degrees clockwise: left half to the top
        (8, (3, 16, 8), (12, 4), (3, 4)),  # 90 degrees counter-clockwise: left half to the bottom
    ],
)
def test_exif_orientation_is_applied(orientation, shape, red_at, blue_at):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = RED
    pixels[:, 8:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    image = decode_image(data, name="phone.jpg")
    assert image.shape == shape
    assert image[0, red_at[0], red_at[1]] > 0.9 and image[2, red_at[0], red_at[1]] < 0.1
    assert image[2, blue_at[0], blue_at[1]] > 0.9 and image[0, blue_at[0], blue_at[1]] < 0.1


def test_rgba_is_composited_on_white_by_default_and_on_black_on_request():
    data = encode(Image.new("RGBA", (3, 2), (255, 0, 0, 128)), "PNG")
    alpha = 128 / 255
    on_white = decode_image(data)
    assert torch.allclose(on_white[:, 1, 2], torch.tensor([1.0, 1 - alpha, 1 - alpha]), atol=1e-6)
    on_black = decode_image(data, background="black")
    assert torch.allclose(on_black[:, 1, 2], torch.tensor([alpha, 0.0, 0.0]), atol=1e-6)
    with pytest.raises(ValueError, match="background"):
        decode_image(data, background="grey")


def test_gray_with_alpha_la():
    image = Image.new("LA", (2, 2), (100, 255))
    image.putpixel((1, 0), (100, 0))  # fully transparent
    decoded = decode_image(encode(image, "PNG"))
    assert rgb(decoded, 0, 0) == (100, 100, 100)
    assert rgb(decoded, 0, 1) == (255, 255, 255)


def test_grayscale_and_bilevel_become_gray_rgb():
    decoded = decode_image(encode(Image.new("L", (2, 2), 77), "PNG"))
    assert rgb(decoded, 1, 1) == (77, 77, 77)
    bilevel = Image.new("1", (2, 2), 0)
    bilevel.putpixel((0, 0), 1)
    decoded = decode_image(encode(bilevel, "PNG"))
    assert rgb(decoded, 0, 0) == (255, 255, 255) and rgb(decoded, 1, 1) == (0, 0, 0)


def test_palette_with_and_without_transparency():
    palette_image = Image.new("P", (2, 1), 0)
    palette_image.putpalette([10, 20, 30, 0, 200, 0] + [0] * 762)
    palette_image.putpixel((1, 0), 1)
    plain = decode_image(encode(palette_image, "PNG"))
    assert rgb(plain, 0, 0) == (10, 20, 30) and rgb(plain, 0, 1) == (0, 200, 0)
    data = encode(palette_image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    transparent = decode_image(data, background="black")
    assert rgb(transparent, 0, 0) == (0, 0, 0) and rgb(transparent, 0, 1) == (0, 200, 0)
    assert rgb(decode_image(data), 0, 0) == (255, 255, 255)


def test_sixteen_bit_png_scales_by_65535():
    values = np.array([[0, 257 * 100, 65535, 32768]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    decoded = decode_image(data)
    assert torch.allclose(decoded[:, 0], torch.tensor([0.0, 100 / 255, 1.0, 32768 / 65535]).expand(3, 4), atol=1e-6)


def test_cmyk_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    assert rgb(decode_image(encode(cmyk, "TIFF")), 2, 2) == (255, 0, 0)
    from_jpeg = decode_image(encode(cmyk, "JPEG", quality=95), name="print.jpg")
    assert from_jpeg[0, 2, 2] > 0.95 and from_jpeg[1:, 2, 2].max() < 0.05


def test_animated_gif_takes_the_first_frame():
    frames = [Image.new("RGB", (4, 4), RED), Image.new("RGB", (4, 4), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert rgb(decode_image(data), 1, 1) == RED


def matrix_icc_profile(red: tuple, green: tuple, blue: tuple) -> bytes:
    """A minimal ICC v2 RGB display profile: the given D50 primaries (XYZ), gamma 2.2 curves."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(s15(v) for v in values)

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0233) + bytes(2)
    tags = [(b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)), (b"bXYZ", xyz(blue))]
    tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    header = bytearray(128)
    header[8:24] = struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
    header[36:40] = b"acsp"
    header[68:80] = s15(0.9642) + s15(1.0) + s15(0.8249)
    profile = bytes(header) + table + data
    return struct.pack(">I", len(profile)) + profile[4:]


SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def test_icc_profile_is_converted_to_srgb():
    # A profile whose red primary is sRGB's green: its pure red must come out sRGB green.
    swapped = matrix_icc_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    image = Image.new("RGB", (2, 1), RED)
    image.putpixel((1, 0), (0, 255, 0))
    decoded = decode_image(encode(image, "PNG", icc_profile=swapped), name="p3.png")
    assert all(abs(a - b) <= 3 for a, b in zip(rgb(decoded, 0, 0), (0, 255, 0), strict=True))
    assert all(abs(a - b) <= 3 for a, b in zip(rgb(decoded, 0, 1), (255, 0, 0), strict=True))
    rgba = Image.new("RGBA", (1, 1), (255, 0, 0, 128))  # converted, then composited on white
    composited = rgb(decode_image(encode(rgba, "PNG", icc_profile=swapped)), 0, 0)
    assert all(abs(a - b) <= 3 for a, b in zip(composited, (127, 255, 127), strict=True))


def test_srgb_icc_profile_keeps_pixels_and_a_broken_one_is_ignored(caplog):
    image = Image.new("RGB", (2, 2), (200, 100, 50))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    decoded = decode_image(encode(image, "PNG", icc_profile=srgb))
    assert all(abs(a - b) <= 1 for a, b in zip(rgb(decoded, 0, 0), (200, 100, 50), strict=True))
    with caplog.at_level(logging.WARNING, logger="pulse_core.imaging"):
        decoded = decode_image(encode(image, "PNG", icc_profile=b"not a profile"), name="odd.png")
    assert rgb(decoded, 0, 0) == (200, 100, 50)
    assert "odd.png: ignoring unusable ICC colour profile" in caplog.text


def test_pil_image_and_numpy_sources():
    assert rgb(decode_image(Image.new("RGB", (2, 2), (1, 2, 3))), 0, 0) == (1, 2, 3)
    gray = decode_image(np.full((2, 3), 128, np.uint8))
    assert gray.shape == (3, 2, 3) and rgb(gray, 1, 2) == (128, 128, 128)
    assert rgb(decode_image(np.full((2, 2, 1), 9, np.uint8)), 0, 0) == (9, 9, 9)
    assert torch.allclose(decode_image(np.full((2, 2, 3), 65535, np.uint16)), torch.ones(3, 2, 2))
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[..., 1] = 1.0
    rgba[..., 3] = 0.25
    assert torch.allclose(decode_image(rgba)[:, 0, 0], torch.tensor([0.75, 1.0, 0.75]))
    with pytest.raises(ImageDecodeError, match=r"upload\.npy: float pixel values must be finite and in \[0, 1\]"):
        decode_image(np.full((2, 2, 3), 255.0), name="upload.npy")
    with pytest.raises(ImageDecodeError, match=r"shape \(2, 2, 5\) is not an image"):
        decode_image(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ImageDecodeError, match="pixel type int64"):
        decode_image(np.zeros((2, 2), np.int64))
    with pytest.raises(ImageDecodeError, match="cannot read an image from a list"):
        decode_image([[0]])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused_with_its_name(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data[: len(data) // 2], name="photo.jpg")
    message = str(caught.value)
    assert message.startswith("photo.jpg: the file is truncated or corrupt (")
    assert "again" in message


def test_empty_text_heic_and_missing_files(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"^upload\.png: the file is empty \(0 bytes\)"):
        decode_image(b"", name="upload.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not pixels\n")
    with pytest.raises(ImageDecodeError, match=r"^notes\.txt: this is a text file, not an image; upload a PNG"):
        decode_image(notes)
    with pytest.raises(ImageDecodeError, match=r"^blob: not a recognised image format"):
        decode_image(bytes(range(256)) * 4, name="blob")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(
        ImageDecodeError, match=r"^IMG_0001\.HEIC: HEIC/HEIF photos are not supported; export it as JPEG"
    ):
        decode_image(heic, name="IMG_0001.HEIC")
    with pytest.raises(ImageDecodeError, match=r"^gone\.png: no such file"):
        decode_image(tmp_path / "gone.png")
    with pytest.raises(ImageDecodeError, match="not a regular file"):
        decode_image(tmp_path)


def test_too_many_bytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(encode(Image.new("RGB", (64, 64)), "PNG") + bytes(2000))
    with pytest.raises(ImageDecodeError, match=r"^huge\.png: the file is 0\.0 MiB, over the 0\.0 MiB limit"):
        decode_image(path, max_bytes=1000)
    with pytest.raises(ImageDecodeError, match="over the 0.0 MiB limit"):
        decode_image(path.read_bytes(), max_bytes=1000)
    assert decode_image(path, max_bytes=None).shape == (3, 64, 64)


def test_decompression_bomb_is_refused_from_the_header(monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixel data was decoded")

    # 8000 x 8000 is under Pillow's own limit: only our check stands in the way, before load().
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(png_header_only(8000, 8000), name="bomb.png")
    assert str(caught.value) == (
        "bomb.png: the image is 8000x8000 = 64.0 megapixels, over the 40.0 megapixel limit "
        "(a guard against decompression bombs); downscale or crop it first"
    )
    # Far over Pillow's limit, Pillow refuses while parsing the header; the message stays ours.
    started = time.perf_counter()
    with pytest.raises(
        ImageDecodeError, match=r"^bomb\.png: the image header declares too many pixels .*decompression bomb"
    ):
        decode_image(png_header_only(100_000, 100_000), name="bomb.png")
    assert time.perf_counter() - started < 1.0


def test_pixel_limit_applies_to_arrays_and_pil_images():
    with pytest.raises(ImageDecodeError, match="megapixel limit"):
        decode_image(np.zeros((100, 100), np.uint8), max_pixels=5000)
    with pytest.raises(ImageDecodeError, match="megapixel limit"):
        decode_image(Image.new("RGB", (100, 100)), max_pixels=5000)


def test_to_pil_rounds_and_clamps(tmp_path):
    image = torch.tensor([0.2, 0.5, 1.2]).view(3, 1, 1).expand(3, 2, 2)
    pil = to_pil(image)
    assert pil.mode == "RGB" and pil.size == (2, 2) and pil.getpixel((0, 0)) == (51, 128, 255)
    path = tmp_path / "out.png"
    save_png(image, path)
    assert rgb(decode_image(path), 1, 1) == (51, 128, 255)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_uint8_array(torch.zeros(1, 3, 2, 2))


def test_center_crop_square_takes_the_middle():
    image = torch.arange(4 * 6, dtype=torch.float32).view(1, 4, 6).expand(3, 4, 6)
    crop = center_crop_square(image)
    assert crop.shape == (3, 4, 4)
    assert torch.equal(crop[0, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    tall = center_crop_square(torch.zeros(3, 7, 2))
    assert tall.shape == (3, 2, 2)
