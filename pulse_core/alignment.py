"""Face detection, landmarks and FFHQ alignment of the input photo (Karras et al. 2019, FFHQ).

PULSE searches the latent space of a generator trained on FFHQ, so it can only explain an input
that is framed the way FFHQ faces are: an oriented square set by the eye centres and the mouth
corners, rotated upright. ``pulse_core.face_detection`` finds the faces and their 68 landmarks;
this module builds FFHQ's quad, crops, pads by reflection with FFHQ's blurred fade, resamples to 1024 px and
downscales with PULSE's bicubic operator to the 16/32/64 px input.

Coordinates are in source pixels with the centre of the top-left pixel at (0, 0) (dlib's and
FFHQ's convention). "Left" and "right" are as seen in the image: ``left_eye`` is the subject's
right eye.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from pulse_core.downsample import downscale, downscale_factor
from pulse_core.face_detection import DetectionConfig, Face, NoFaceFoundError, find_faces
from pulse_core.imaging import center_crop_square

__all__ = [
    "DetectionConfig",
    "Face",
    "NoFaceFoundError",
    "PreparedInput",
    "align_face",
    "alignment_quad",
    "find_faces",
    "prepare_input",
]

logger = logging.getLogger(__name__)

ALIGNED_SIZE = 1024  # FFHQ's resolution, the generator's output and the high-resolution frame


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """The low-resolution input of a PULSE search and how it was made from the photo."""

    lr_image: torch.Tensor  # (3, size, size) in [0, 1]
    aligned: torch.Tensor | None  # (3, 1024, 1024) FFHQ-aligned face in [0, 1]; None for a centre crop
    face: Face | None  # the face that was aligned; None for a centre crop
    method: Literal["aligned", "center-crop"]



def alignment_quad(face: Face) -> np.ndarray:
    """FFHQ's oriented crop square, (4, 2): top-left, bottom-left, bottom-right, top-right corners.

    With e the eye midpoint, v the eye-to-eye and m the eye-to-mouth vector (mouth = midpoint of
    the two corners), the half-axis x is v - rot90(m), normalised and scaled by max(2|v|, 1.8|m|);
    y is x turned 90 degrees clockwise on screen (pointing down for an upright face); the centre is
    e + 0.1 m. For a frontal face (m perpendicular to v, |m| <= 1.11 |v|) this puts the eyes at
    x = 3/8 and 5/8 of the output width, on the row y = 1/2 - |m| / (40 |v|) of it: at 1024 px,
    x = 384 and 640 (pixel-centre coordinates; pixel indices are 0.5 less) and y = 490 for the
    astronaut's |m| = 0.86 |v|.
    """
    left_eye, right_eye = np.asarray(face.left_eye, dtype=np.float64), np.asarray(face.right_eye, dtype=np.float64)
    eye_mid = (left_eye + right_eye) / 2
    eye_to_eye = right_eye - left_eye
    eye_to_mouth = (np.asarray(face.mouth_left) + np.asarray(face.mouth_right)) / 2 - eye_mid
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = float(np.hypot(*x))
    if norm == 0:
        raise ValueError("degenerate face: the eyes and mouth are at the same point")
    x *= max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth)) / norm
    y = np.array([-x[1], x[0]])
    centre = eye_mid + 0.1 * eye_to_mouth
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W), truncated at 4 sigma, reflected at the edges."""
    radius = max(1, math.ceil(4 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=image.dtype) / sigma) ** 2)
    taps = taps / taps.sum()
    channels = image.shape[1]
    mode = "reflect" if radius < min(image.shape[2:]) else "replicate"
    out = F.conv2d(
        F.pad(image, (0, 0, radius, radius), mode=mode),
        taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1),
        groups=channels,
    )
    return F.conv2d(
        F.pad(out, (radius, radius, 0, 0), mode=mode),
        taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1),
        groups=channels,
    )


def _pad_like_ffhq(image: torch.Tensor, pad: tuple[int, int, int, int], qsize: float) -> torch.Tensor:
    """Reflect-pad (1, 3, H, W) by (left, top, right, bottom) and fade the padding as FFHQ does.

    The mirrored content is blurred (fully at the photo's edge, fading out over a third of the
    padding into the photo) and blended towards the median colour further out, so that the
    generator is not shown sharp mirrored copies of the face.
    """
    left, top, right, bottom = pad
    padded = np.pad(image[0].permute(1, 2, 0).numpy(), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    ys, xs = np.ogrid[:height, :width]
    mask = np.maximum(
        1.0 - np.minimum(xs / left, (width - 1 - xs) / right),
        1.0 - np.minimum(ys / top, (height - 1 - ys) / bottom),
    ).astype(np.float32)
    out = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
    weight = torch.from_numpy(mask)[None, None]
    out = out + (_gaussian_blur(out, qsize * 0.02) - out) * (weight * 3.0 + 1.0).clamp(0.0, 1.0)
    median = out.flatten(2).median(dim=2).values.view(1, -1, 1, 1)
    return out + (median - out) * weight.clamp(0.0, 1.0)


def align_face(
    image: torch.Tensor, face: Face, *, output_size: int = ALIGNED_SIZE, supersample: int | None = None
) -> torch.Tensor:
    """Crop, pad, rotate and resample ``face`` the way FFHQ was made; returns (3, S, S) in [0, 1].

    ``image`` is the (3, H, W) photo in [0, 1] that ``face`` was found in. As in FFHQ, photos
    far larger than the quad are first shrunk and areas outside the photo are filled by
    ``_pad_like_ffhq``. The quad of ``alignment_quad`` is then sampled bilinearly at
    ``supersample * output_size`` and reduced with PULSE's bicubic operator. FFHQ always
    supersamples 4x; the default (None) supersamples only as much as the quad is larger than the
    output (1, 2 or 4): the same geometry at a fraction of the cost when upsampling.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image of shape (3, H, W), got {tuple(image.shape)}")
    quad = alignment_quad(face)
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    work = image.detach().float().cpu()[None]
    # PULSE's bicubic operator is centred on its output pixels only for even factors, so the
    # shrink and supersampling factors are powers of two (FFHQ's shrink is any integer).
    shrink = _power_of_two_at_most(qsize / output_size * 0.5)
    if shrink > 1:  # as FFHQ: keep the final resampling from skipping source pixels
        height, width = work.shape[2:]
        work = downscale(work[..., : height - height % shrink, : width - width % shrink], shrink)
        quad, qsize = (quad + 0.5) / shrink - 0.5, qsize / shrink
    height, width = work.shape[2:]
    border = max(round(qsize * 0.1), 3)
    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    x0, y0 = max(low[0] - border, 0), max(low[1] - border, 0)
    x1, y1 = min(high[0] + border, width), min(high[1] + border, height)
    work, quad = work[..., y0:y1, x0:x1], quad - (x0, y0)
    height, width = work.shape[2:]
    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = [
        max(border - low[0], 0),
        max(border - low[1], 0),
        max(high[0] - width + border, 0),
        max(high[1] - height + border, 0),
    ]
    if max(pad) > border - 4:
        floor_pad = max(round(qsize * 0.3), 1)
        pad = [max(p, floor_pad) for p in pad]
        work, quad = _pad_like_ffhq(work, tuple(pad), qsize), quad + (pad[0], pad[1])
    height, width = work.shape[2:]
    if supersample is None:
        supersample = min(4, 2 ** math.ceil(math.log2(max(1.0, qsize / output_size))))
    elif supersample < 1 or supersample & (supersample - 1):
        raise ValueError(f"supersample must be a power of two, got {supersample}")
    # Output pixel centre (u, v) in [0, 1]^2 samples corner0 + u (corner3 - corner0) + v (corner1 - corner0).
    corners = torch.from_numpy(quad + 0.5).float()
    steps = (torch.arange(output_size * supersample, dtype=torch.float32) + 0.5) / (output_size * supersample)
    grid = (
        corners[0] + steps.view(1, -1, 1) * (corners[3] - corners[0]) + steps.view(-1, 1, 1) * (corners[1] - corners[0])
    )
    grid = grid / torch.tensor([width, height], dtype=torch.float32) * 2.0 - 1.0
    sampled = F.grid_sample(work, grid[None], mode="bilinear", padding_mode="border", align_corners=False)
    return downscale(sampled, supersample)[0].clamp(0.0, 1.0)


def _power_of_two_at_most(value: float) -> int:
    return 2 ** math.floor(math.log2(value)) if value >= 1 else 1


def _center_crop_input(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central square of ``image`` reduced to (3, size, size) with PULSE's operator."""
    crop = center_crop_square(image.detach().float().cpu())[None]
    side = crop.shape[-1]
    if side % size == 0 and (side // size) & (side // size - 1) == 0:
        return downscale(crop, side // size)[0].clamp(0.0, 1.0)
    # Other sides go through the 1024 px frame, as aligned faces do.
    resized = F.interpolate(
        crop, size=(ALIGNED_SIZE, ALIGNED_SIZE), mode="bicubic", align_corners=False, antialias=True
    )
    return downscale(resized.clamp(0.0, 1.0), ALIGNED_SIZE // size)[0].clamp(0.0, 1.0)


def prepare_input(
    image: torch.Tensor,
    *,
    size: int,
    align: bool = True,
    face_index: int = 0,
    config: DetectionConfig = DetectionConfig(),
    name: str | None = None,
) -> PreparedInput:
    """Turn a photo (3, H, W) in [0, 1] into PULSE's (3, size, size) low-resolution input.

    ``size`` is 16, 32 or 64 (any power-of-two divisor of 1024 works). With ``align`` the
    ``face_index``-th face (0 = largest) is FFHQ-aligned at 1024 px and downscaled; without it
    the central square is downscaled as it is. Raises ``NoFaceFoundError`` when aligning finds
    no face; ``name`` names the photo in that message.
    """
    factor = downscale_factor(ALIGNED_SIZE, size)
    if not align:
        return PreparedInput(_center_crop_input(image, size), None, None, "center-crop")
    faces = find_faces(image, config=config)
    label = name or "the image"
    if not faces:
        height, width = image.shape[1:]
        if max(height, width) < 80:
            reason = f"{label} is only {width}x{height} px, too small to find a face in"
        else:
            reason = f"no face was found in {label} (the detector needs a roughly frontal face at least ~40 px wide)"
        raise NoFaceFoundError(
            f"{reason}. If the image already is a face crop, use the centre crop instead (align=False), "
            "which downscales the central square without aligning it."
        )
    if not 0 <= face_index < len(faces):
        raise ValueError(
            f"face_index {face_index} is out of range: {len(faces)} face(s) found in {label}, 0 is the largest"
        )
    face = faces[face_index]
    aligned = align_face(image, face, output_size=ALIGNED_SIZE)
    lr_image = downscale(aligned[None], factor)[0].clamp(0.0, 1.0)
    return PreparedInput(lr_image, aligned, face, "aligned")

