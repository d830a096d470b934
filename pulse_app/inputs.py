"""From an uploaded file to the low-resolution input of a search, or a sentence saying why not.

The person says what the image is: an aligned low-resolution face (used as it is, after checking
that the generator can explain its size), or an ordinary photo, which is either FFHQ-aligned around
a detected face or centre-cropped, then downscaled to 16, 32 or 64 px. Every refusal is a
``UserInputError`` whose message is one plain sentence with the remedy; nothing here logs the
image or where it was stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from pulse_core.alignment import ALIGNED_SIZE, align_face, prepare_input
from pulse_core.degradations import degrade, parse_degradation
from pulse_core.downsample import downscale
from pulse_core.face_detection import Face, find_faces
from pulse_core.imaging import ImageDecodeError, decode_image

__all__ = ["DEGRADATIONS", "INPUT_KINDS", "PHOTO_SIZES", "SearchInput", "UserInputError", "face_previews",
           "input_sizes", "prepare", "read_upload"]

INPUT_KINDS: dict[str, str] = {
    "lr": "Aligned low-resolution face (use as is)",
    "align": "Photo: find and align a face",
    "crop": "Photo: centre crop (no alignment)",
}
PHOTO_SIZES = (16, 32, 64)
DEGRADATIONS: dict[str, str] = {
    "none": "None",
    "gaussian:25": "Gaussian noise, std 25/255 (paper, fig. 6)",
    "gaussian:50": "Gaussian noise, std 50/255 (paper, fig. 6)",
    "salt_pepper:0.05": "Salt and pepper, density 0.05 (paper, fig. 6)",
    "motion_blur:100": "Motion blur, 100 px at 1024 px, before downscaling (photo + align only)",
}
UPLOAD_NAME = "the uploaded image"  # how messages refer to the file: never its path
_ALIGN, _CROP = f"“{INPUT_KINDS['align']}”", f"“{INPUT_KINDS['crop']}”"


class UserInputError(ValueError):
    """An input the app cannot use; the message is a sentence for the person who gave it."""


@dataclass(frozen=True, eq=False)
class SearchInput:
    """The target of one search and how it was made from the upload."""

    lr_image: torch.Tensor  # (3, s, s) in [0, 1]
    name: str  # the upload's file name, for the report and the output files
    preparation: dict  # mode, sizes, face, degradation: the "preparation" entry of results.json
    degradation: str | None = None  # the degradation applied, as a spec like "gaussian:25"


def input_sizes(resolution: int) -> tuple[int, ...]:
    """Input sides a ``resolution`` px generator can explain: resolution / 2**k, k >= 1, at least 4 px."""
    return tuple(resolution >> k for k in range(1, 12) if resolution >> k >= 4)


def read_upload(path: str | None, *, max_bytes: int, max_pixels: int) -> torch.Tensor:
    """Decode the uploaded file at ``path`` into (3, H, W) in [0, 1] (EXIF, alpha, 16 bit, palette handled)."""
    if not path:
        raise UserInputError("No image was given: upload a photo or a low-resolution face (or paste one, or take "
                             "one with the webcam), then press Run.")
    try:
        return decode_image(path, name=UPLOAD_NAME, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageDecodeError as error:
        text = str(error)
        raise UserInputError(text[0].upper() + text[1:] + ".") from None


def _sizes_text(sizes: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in sizes[:-1]) + f" or {sizes[-1]}" if len(sizes) > 1 else str(sizes[0])


def _check_lr(image: torch.Tensor, resolution: int) -> None:
    height, width = image.shape[1:]
    if height != width:
        raise UserInputError(f"The uploaded image is {width}x{height} px, but an aligned low-resolution face must be "
                             f"square. Choose {_ALIGN} to align and downscale it, or {_CROP} to use its central square.")
    sizes = input_sizes(resolution)
    if width not in sizes:
        raise UserInputError(f"The uploaded image is {width}x{width} px, which does not divide the generator's "
                             f"{resolution} px by a power of two, so no generated face can downscale to it. Use a "
                             f"{_sizes_text(sizes)} px image, or choose {_CROP} to crop and downscale it or {_ALIGN}.")


def prepare(image: torch.Tensor, *, kind: str, size: int, face_number: int, resolution: int, name: str,
            degradation: str = "none", seed: int = 0) -> SearchInput:
    """The (3, s, s) target of a search on a ``resolution`` px generator from a decoded upload."""
    if kind not in INPUT_KINDS:
        raise UserInputError(f"Unknown kind of input {kind!r}; choose one of {', '.join(INPUT_KINDS)}.")
    preparation: dict = {"mode": kind, "source_size": list(image.shape[1:])}  # [H, W], as the CLI writes it
    aligned = None
    if kind == "lr":
        _check_lr(image, resolution)
        lr_image = image
    else:
        sizes = [s for s in PHOTO_SIZES if s in input_sizes(resolution)] or list(input_sizes(resolution))
        if size not in sizes:
            raise UserInputError(f"The generator makes {resolution} px faces, so a photo cannot be downscaled to "
                                 f"{size} px for it; choose {_sizes_text(tuple(sizes))} px.")
        if kind == "align":
            lr_image, aligned, face = _align(image, size, face_number)
            preparation["face"] = {"number": face_number, "box": [round(v, 1) for v in face.box]}
        else:
            lr_image = prepare_input(image, size=size, align=False).lr_image
        preparation["method"] = "aligned" if kind == "align" else "center-crop"
    preparation["size"] = int(lr_image.shape[-1])
    if degradation == "none":
        return SearchInput(lr_image.contiguous(), name, preparation)
    lr_image, preparation["degradation"] = _degrade(lr_image, aligned, degradation, seed)
    return SearchInput(lr_image.contiguous(), name, preparation, degradation)


def _faces(image: torch.Tensor) -> list[Face]:
    try:
        return find_faces(image)
    except RuntimeError as error:  # dlib or its models are not installed on this server
        raise UserInputError(f"Face alignment is not available here ({error}). Choose {_CROP}, or upload an "
                             "aligned low-resolution face.") from None


def _align(image: torch.Tensor, size: int, face_number: int) -> tuple[torch.Tensor, torch.Tensor, Face]:
    faces = _faces(image)
    if not faces:
        height, width = image.shape[1:]
        reason = (f"The uploaded image is only {width}x{height} px, too small to find a face in"
                  if max(height, width) < 80 else
                  "No face was found in the uploaded image (the detector needs a roughly frontal face at least "
                  "about 40 px wide)")
        raise UserInputError(f"{reason}. Choose {_CROP} to use its central square instead, or upload an aligned "
                             "low-resolution face.")
    if not 1 <= face_number <= len(faces):
        count = f"{len(faces)} face{'s were' if len(faces) != 1 else ' was'}"
        raise UserInputError(f"Face {face_number} was asked for, but {count} found in the uploaded image; choose a "
                             f"number from 1 to {len(faces)} (1 is the largest).")
    face = faces[face_number - 1]
    aligned = align_face(image, face, output_size=ALIGNED_SIZE)
    lr_image = downscale(aligned[None], ALIGNED_SIZE // size)[0].clamp(0.0, 1.0)
    return lr_image, aligned, face


def _degrade(lr_image: torch.Tensor, aligned: torch.Tensor | None, spec: str, seed: int) -> tuple[torch.Tensor, dict]:
    """The degraded input (noise after downscaling, motion blur before it) and the degradation's fields."""
    if spec not in DEGRADATIONS:
        raise UserInputError(f"Unknown degradation {spec!r}; choose one of {', '.join(DEGRADATIONS)}.")
    degradation = parse_degradation(spec)
    generator = torch.Generator().manual_seed(seed)
    if degradation.kind == "motion_blur":
        if aligned is None:
            raise UserInputError(f"Motion blur is applied before downscaling, so it needs the full photo: choose "
                                 f"{_ALIGN}, or pick a noise degradation.")
        degraded = degrade(aligned, degradation, generator=generator, factor=ALIGNED_SIZE // lr_image.shape[-1])
    else:
        degraded = degrade(lr_image, degradation, generator=generator)
    return degraded, dataclasses.asdict(degradation)


def face_previews(image: torch.Tensor, *, size: int = 128) -> list[tuple[torch.Tensor, str]]:
    """Every face found in a photo, aligned at ``size`` px, with a caption: largest first, numbered from 1."""
    faces = _faces(image)
    captions = [f"Face {i + 1}" for i in range(len(faces))]
    if len(faces) > 1:
        captions[0] += " (largest)"
    return [(align_face(image, face, output_size=size), text) for face, text in zip(faces, captions)]
