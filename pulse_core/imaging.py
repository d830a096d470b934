"""Decoding the photos people really upload into (3, H, W) float tensors, and writing them back.

PULSE works on RGB images in [0, 1]. Uploads arrive as bytes, paths, PIL images or numpy arrays in
every mode a camera, phone or editor produces: EXIF-rotated JPEGs, transparent PNGs, palette GIFs,
16-bit scans, CMYK print files. ``decode_image`` turns each of them into one canonical tensor, or
refuses it with an ``ImageDecodeError`` that names the file, says what is wrong and what to do.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageDecodeError",
    "ImageSource",
    "center_crop_square",
    "decode_image",
    "save_png",
    "to_pil",
    "to_uint8_array",
]

logger = logging.getLogger(__name__)

ImageSource = bytes | bytearray | memoryview | str | Path | Image.Image | np.ndarray

_BACKGROUNDS = {"white": 1.0, "black": 0.0}
# Modes whose samples are 16 bits wide; "I" (32-bit) is what 16-bit PNG and TIFF decode to as well.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# ISO-BMFF brands of HEIC/HEIF, the iPhone's default; Pillow cannot read them without a plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


class ImageDecodeError(ValueError):
    """The input could not be turned into an image; the message names the file and the remedy."""


def decode_image(
    source: ImageSource,
    *,
    name: str | None = None,
    background: str = "white",
    max_pixels: int = 40_000_000,
    max_bytes: int | None = 50 * 2**20,
) -> torch.Tensor:
    """Decode ``source`` into a float32 tensor of shape (3, H, W) with values in [0, 1].

    ``source`` is encoded file content (bytes), a file path, a ``PIL.Image`` or a numpy array
    (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of dtype uint8, uint16, bool or float in [0, 1].
    EXIF orientation is applied; embedded ICC profiles are converted to sRGB; transparency is
    composited onto ``background`` ("white", the default, or "black"); every Pillow mode (L, LA,
    P with or without transparency, I;16, I, F, CMYK, YCbCr, ...) becomes RGB; of an animation the
    first frame is taken. Images over ``max_pixels`` pixels are refused from their header, before
    any pixel is decoded (decompression bombs), and files over ``max_bytes`` before they are read
    (``None`` lifts that limit). ``name`` is how errors refer to the input (default: the file
    name of a path, else "the image"). Raises ``ImageDecodeError`` on any unusable input.
    """
    if background not in _BACKGROUNDS:
        raise ValueError(f"background must be one of {sorted(_BACKGROUNDS)}, got {background!r}")
    fill = _BACKGROUNDS[background]
    if isinstance(source, (str, Path)):
        label = name or Path(source).name
        return _decode_encoded(_read_file(Path(source), label, max_bytes), label, fill, max_pixels)
    label = name or "the image"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_byte_size(len(data), label, max_bytes)
        return _decode_encoded(data, label, fill, max_pixels)
    if isinstance(source, Image.Image):
        _check_pixel_count(source.size, label, max_pixels)
        _load(source, label)
        return _from_pil(source, label, fill)
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_pixel_count((source.shape[1], source.shape[0]), label, max_pixels)
        return _from_array(source, label, fill)
    raise ImageDecodeError(
        f"{label}: cannot read an image from a {type(source).__name__}; "
        "pass file bytes, a file path, a PIL image or a numpy array"
    )


def _read_file(path: Path, label: str, max_bytes: int | None) -> bytes:
    if not path.exists():
        raise ImageDecodeError(f"{label}: no such file ({path}); check the path")
    if not path.is_file():
        raise ImageDecodeError(f"{label}: {path} is not a regular file; pass an image file")
    # The size is checked before reading so that a huge file never lands in memory.
    _check_byte_size(path.stat().st_size, label, max_bytes)
    return path.read_bytes()


def _check_byte_size(size: int, label: str, max_bytes: int | None) -> None:
    if size == 0:
        raise ImageDecodeError(f"{label}: the file is empty (0 bytes); upload the image again")
    if max_bytes is not None and size > max_bytes:
        raise ImageDecodeError(
            f"{label}: the file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit; "
            "save it at a smaller size or higher compression (a face photo needs far less)"
        )


def _check_pixel_count(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"{label}: the image is {width}x{height} = {width * height / 1e6:.1f} megapixels, over the "
            f"{max_pixels / 1e6:.1f} megapixel limit (a guard against decompression bombs); "
            "downscale or crop it first"
        )


def _decode_encoded(data: bytes, label: str, fill: float, max_pixels: int) -> torch.Tensor:
    try:
        # Our own pixel limit is checked below from the header; Pillow's global one (a warning,
        # or an error at twice its size) must not preempt it, and is not changed globally.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(
            f"{label}: the image header declares too many pixels ({error}); this looks like a "
            "decompression bomb; downscale or crop the image first"
        ) from error
    except UnidentifiedImageError as error:
        raise ImageDecodeError(f"{label}: {_describe_unknown(data)}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(
            f"{label}: the file is truncated or corrupt ({error}); export or download it again"
        ) from error
    with image:
        _check_pixel_count(image.size, label, max_pixels)
        _load(image, label)
        if getattr(image, "is_animated", False):
            logger.info("%s: animated image, using its first frame", label)
            image.seek(0)
        return _from_pil(image, label, fill)


def _load(image: Image.Image, label: str) -> None:
    """Decode the pixel data (Pillow opens lazily), turning decoder failures into our error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise ImageDecodeError(
            f"{label}: the file is truncated or corrupt ({error}); export or download it again"
        ) from error


def _describe_unknown(data: bytes) -> str:
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return (
            "HEIC/HEIF photos are not supported; export it as JPEG or PNG "
            "(on an iPhone: Settings > Camera > Formats > Most Compatible)"
        )
    head = data[:4096]
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "this is a text file, not an image; upload a PNG, JPEG, WebP, GIF, BMP or TIFF file"
        except UnicodeDecodeError:
            pass
    return "not a recognised image format; upload a PNG, JPEG, WebP, GIF, BMP or TIFF file"


def _from_pil(image: Image.Image, label: str, fill: float) -> torch.Tensor:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as error:  # malformed EXIF must not cost the user the whole photo
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", label, error)
    image = _to_srgb(image, label)
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            # Float images carry no declared range: treat them as [0, 1] unless they clearly are 0-255.
            scale = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
        else:
            scale = 65535.0
        gray = np.clip(values / scale, 0.0, 1.0).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(np.broadcast_to(gray, (3, *gray.shape))))
    if mode == "P":
        mode_out = "RGBA" if "transparency" in image.info else "RGB"
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        mode_out = "RGBA"
    else:
        mode_out = "RGB"
    try:
        converted = image.convert(mode_out)
    except (ValueError, OSError) as error:
        raise ImageDecodeError(
            f"{label}: colour mode {mode!r} is not supported ({error}); save it as an RGB PNG or JPEG"
        ) from error
    return _from_array(np.asarray(converted), label, fill)


def _to_srgb(image: Image.Image, label: str) -> Image.Image:
    """Convert an image with an embedded ICC profile (Display P3, Adobe RGB, CMYK) to sRGB."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        if image.mode == "RGBA":
            alpha = image.getchannel("A")
            rgb = ImageCms.profileToProfile(image.convert("RGB"), source_profile, srgb, outputMode="RGB")
            rgb.putalpha(alpha)
            return rgb
        return ImageCms.profileToProfile(image, source_profile, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
        logger.warning("%s: ignoring unusable ICC colour profile (%s)", label, error)
        return image


def _from_array(array: np.ndarray, label: str, fill: float) -> torch.Tensor:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise ImageDecodeError(
            f"{label}: an array of shape {array.shape} is not an image; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif array.dtype == np.bool_:
        values = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            raise ImageDecodeError(
                f"{label}: float pixel values must be finite and in [0, 1] (found {np.nanmin(values):.3g} "
                f"to {np.nanmax(values):.3g}); divide 8-bit values by 255"
            )
    else:
        raise ImageDecodeError(
            f"{label}: pixel type {array.dtype} is not supported; use uint8, uint16 or float in [0, 1]"
        )
    if values.ndim == 2:
        values = np.repeat(values[:, :, None], 3, axis=2)
    elif values.shape[2] == 4:
        alpha = values[:, :, 3:]
        values = values[:, :, :3] * alpha + fill * (1.0 - alpha)
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image tensor of shape (3, H, W), got {tuple(image.shape)}")


def to_uint8_array(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) uint8 array, values clamped and rounded."""
    _check_image(image)
    scaled = (image.detach().float().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(scaled.permute(1, 2, 0).numpy())


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [0, 1] -> RGB ``PIL.Image`` (8 bits, rounded)."""
    return Image.fromarray(to_uint8_array(image))


def save_png(image: torch.Tensor, path: str | Path) -> None:
    """Write a (3, H, W) tensor in [0, 1] as an 8-bit RGB PNG."""
    to_pil(image).save(Path(path), format="PNG", optimize=True)


def center_crop_square(image: torch.Tensor) -> torch.Tensor:
    """The central (3, S, S) square of a (3, H, W) image, S = min(H, W); odd margins favour the top/left."""
    _check_image(image)
    height, width = image.shape[1:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[:, top : top + side, left : left + side]
