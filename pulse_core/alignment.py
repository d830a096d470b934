"""Face detection, landmarks and FFHQ alignment of the input photo (Karras et al. 2019, FFHQ).

PULSE searches the latent space of a generator trained on FFHQ, so it can only explain an input
that is framed the way FFHQ faces are: an oriented square set by the eye centres and the mouth
corners, rotated upright. This module finds faces, locates the 68 iBUG-300W landmarks with dlib's
ensemble of regression trees (Kazemi & Sullivan 2014, the landmarker FFHQ itself used), builds
FFHQ's quad, crops, pads by reflection with FFHQ's blurred fade, resamples to 1024 px and
downscales with PULSE's bicubic operator to the 16/32/64 px input.

Detection: dlib's HOG detector proposes faces on copies of the photo rotated by each of
``DetectionConfig.roll_angles`` (the detector itself only tolerates about +-30 degrees of head
roll); dlib's CNN (MMOD) detector re-checks each proposal on an upright crop to reject the HOG
detector's false positives, and searches the whole photo when HOG finds nothing. The models ship
in the pip packages ``dlib-bin`` and ``face-recognition-models``: nothing is downloaded.

Coordinates are in source pixels with the centre of the top-left pixel at (0, 0) (dlib's and
FFHQ's convention). "Left" and "right" are as seen in the image: ``left_eye`` is the subject's
right eye.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pulse_core.downsample import downscale, downscale_factor
from pulse_core.imaging import center_crop_square, to_uint8_array

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
_VERIFY_FACE_PX = 100  # face size in the CNN's verification crop; the MMOD model finds faces >= ~80 px
_FALLBACK_SIDE = 480  # longest side of the copy searched by the (slow, ~1 s) CNN fallback
# dlib's detectors keep scratch buffers inside the objects: concurrent calls (a web app's request
# threads) must not share them, so every dlib call goes through this lock.
_DLIB_LOCK = threading.Lock()

Point = tuple[float, float]


class NoFaceFoundError(ValueError):
    """No usable face was found; the message offers the centre crop instead."""


@dataclass(frozen=True)
class DetectionConfig:
    """How ``find_faces`` searches a photo."""

    max_side: int = 800  # detection runs on a copy at most this long; faces under ~40 px there are missed
    roll_angles: tuple[float, ...] = (0.0, -30.0, 30.0, -60.0, 60.0)  # photo rotations tried (degrees)
    min_score: float = 0.0  # HOG detector threshold (dlib's own default); lower finds more and worse
    verify: bool = True  # re-check HOG proposals with the CNN detector (rejects most false positives)
    cnn_fallback: bool = True  # when HOG finds nothing, search the whole photo with the CNN detector

    def __post_init__(self) -> None:
        if not isinstance(self.max_side, int) or self.max_side < 64:
            raise ValueError(f"max_side must be an integer >= 64, got {self.max_side!r}")
        if not self.roll_angles or any(abs(a) > 180 for a in self.roll_angles):
            raise ValueError(
                f"roll_angles must be a non-empty tuple of degrees in [-180, 180], got {self.roll_angles!r}"
            )


@dataclass(frozen=True)
class Face:
    """One detected face in source-pixel coordinates (see the module docstring)."""

    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) axis-aligned bounds of the detection
    left_eye: Point  # centre of the eye on the image's left (mean of landmarks 36-41)
    right_eye: Point  # centre of the eye on the image's right (mean of landmarks 42-47)
    mouth_left: Point  # outer mouth corner on the image's left (landmark 48)
    mouth_right: Point  # outer mouth corner on the image's right (landmark 54)
    score: float = 0.0  # HOG detector score (CNN confidence for fallback finds); ~1 or more is confident
    landmarks: tuple[Point, ...] = ()  # the 68 points the above come from; empty for hand-made faces

    @property
    def roll(self) -> float:
        """Angle of the eye line in degrees; positive when it descends to the right (y points down)."""
        return math.degrees(math.atan2(self.right_eye[1] - self.left_eye[1], self.right_eye[0] - self.left_eye[0]))

    @property
    def size(self) -> float:
        """Side of FFHQ's crop square in source pixels, 2 max(2|v|, 1.8|m|): what "largest" means."""
        eye_to_eye = math.dist(self.left_eye, self.right_eye)
        mouth = ((self.mouth_left[0] + self.mouth_right[0]) / 2, (self.mouth_left[1] + self.mouth_right[1]) / 2)
        eye_mid = ((self.left_eye[0] + self.right_eye[0]) / 2, (self.left_eye[1] + self.right_eye[1]) / 2)
        return 2 * max(2 * eye_to_eye, 1.8 * math.dist(eye_mid, mouth))


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """The low-resolution input of a PULSE search and how it was made from the photo."""

    lr_image: torch.Tensor  # (3, size, size) in [0, 1]
    aligned: torch.Tensor | None  # (3, 1024, 1024) FFHQ-aligned face in [0, 1]; None for a centre crop
    face: Face | None  # the face that was aligned; None for a centre crop
    method: Literal["aligned", "center-crop"]


@dataclass(frozen=True)
class _Candidate:
    centre: Point  # continuous source coordinates (pixel centres at +0.5)
    size: float  # side of the detection square in source pixels
    roll: float  # degrees; the face is upright in a frame rotated by this much
    score: float


class _Models(NamedTuple):
    hog: Any  # dlib.fhog_object_detector
    predictor: Any  # dlib.shape_predictor, 68 points
    cnn: Any  # dlib.cnn_face_detection_model_v1 (MMOD)
    rectangle: Any  # the dlib.rectangle type


@functools.lru_cache(maxsize=1)
def _models() -> _Models:
    """dlib's detectors and 68-point shape predictor, loaded once (about 1 s, 110 MB)."""
    try:
        import dlib
    except ImportError as error:
        raise RuntimeError(
            "face alignment needs dlib: pip install dlib-bin face-recognition-models (or use the centre crop)"
        ) from error
    # Located without importing the package: its __init__ needs pkg_resources, gone from new setuptools.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "face alignment needs the dlib models: pip install face-recognition-models (or use the centre crop)"
        )
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    return _Models(
        hog=dlib.get_frontal_face_detector(),
        predictor=dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
        cnn=dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat")),
        rectangle=dlib.rectangle,
    )


def _frame(centre: Point, roll: float, scale: float, size: tuple[int, int]) -> np.ndarray:
    """(2, 3) affine map from a rotated, scaled view of ``size`` (w, h) to source coordinates.

    Both sides use continuous coordinates (pixel centres at +0.5), Pillow's convention for
    ``Image.transform``. The view's x axis runs along ``roll`` degrees in the source.
    """
    cos, sin = math.cos(math.radians(roll)) / scale, math.sin(math.radians(roll)) / scale
    linear = np.array([[cos, -sin], [sin, cos]])
    offset = np.asarray(centre) - linear @ (np.asarray(size, dtype=np.float64) / 2)
    return np.concatenate([linear, offset[:, None]], axis=1)


def _warp(image: Image.Image, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sample the view ``frame`` of ``image`` as an (h, w, 3) uint8 array, antialiased when shrinking."""
    reduction = int(1.0 / _frame_scale(frame))
    if reduction >= 2:
        # Bilinear sampling skips pixels when shrinking: box-reduce first (continuous coordinates divide by k).
        image, frame = image.reduce(reduction), frame / reduction
    view = image.transform(size, Image.Transform.AFFINE, tuple(frame.ravel()), Image.Resampling.BILINEAR)
    return np.asarray(view)


def _frame_scale(frame: np.ndarray) -> float:
    """View pixels per source pixel of a similarity ``frame``."""
    return 1.0 / math.hypot(frame[0, 0], frame[1, 0])


def _to_source(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) dlib pixel indices of a view to source pixel indices."""
    return (points + 0.5) @ frame[:, :2].T + frame[:, 2] - 0.5


def _hog_candidates(photo: Image.Image, config: DetectionConfig) -> list[_Candidate]:
    width, height = photo.size
    scale = min(1.0, config.max_side / max(width, height))
    # Small photos are upsampled twice so that faces of ~20 px are still seen.
    upsample = 2 if max(width, height) * scale < 400 else 1
    found = []
    for roll in config.roll_angles:
        cos, sin = abs(math.cos(math.radians(roll))), abs(math.sin(math.radians(roll)))
        size = (math.ceil(scale * (width * cos + height * sin)), math.ceil(scale * (width * sin + height * cos)))
        frame = _frame((width / 2, height / 2), roll, scale, size)
        with _DLIB_LOCK:
            boxes, scores, _ = _models().hog.run(_warp(photo, frame, size), upsample, config.min_score)
        for box, score in zip(boxes, scores, strict=True):
            centre = _to_source(frame, np.array([[(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2]]))[0]
            found.append(_Candidate((centre[0] + 0.5, centre[1] + 0.5), box.width() / scale, roll, float(score)))
    # The same face is found at neighbouring rotations: keep the best-scoring proposal of each.
    kept: list[_Candidate] = []
    for candidate in sorted(found, key=lambda c: -c.score):
        if all(math.dist(candidate.centre, k.centre) > 0.5 * max(candidate.size, k.size) for k in kept):
            kept.append(candidate)
    return kept


def _cnn_confirms(photo: Image.Image, candidate: _Candidate) -> bool:
    scale = _VERIFY_FACE_PX / candidate.size
    side = 2 * _VERIFY_FACE_PX
    view = _warp(photo, _frame(candidate.centre, candidate.roll, scale, (side, side)), (side, side))
    with _DLIB_LOCK:
        detections = _models().cnn(view, 0)
    return any(
        d.rect.left() <= side / 2 <= d.rect.right() and d.rect.top() <= side / 2 <= d.rect.bottom() for d in detections
    )


def _cnn_candidates(photo: Image.Image) -> list[_Candidate]:
    # Small photos are enlarged too: the MMOD model only sees faces of ~80 px or more.
    scale = _FALLBACK_SIDE / max(photo.size)
    size = (round(photo.width * scale), round(photo.height * scale))
    if min(size) < 40:  # dlib's CNN corrupts memory on tiny inputs (seen with 8 px)
        return []
    small = photo.resize(size, Image.Resampling.BILINEAR)
    with _DLIB_LOCK:
        detections = _models().cnn(np.asarray(small), 0)
    return [
        _Candidate(
            ((d.rect.left() + d.rect.right() + 1) / 2 / scale, (d.rect.top() + d.rect.bottom() + 1) / 2 / scale),
            d.rect.width() / scale,
            0.0,
            float(d.confidence),
        )
        for d in detections
    ]


def _landmarks(photo: Image.Image, candidate: _Candidate) -> np.ndarray:
    """(68, 2) landmarks, predicted on an upright crop re-rotated until the eye line is level."""
    models = _models()
    scale = max(1.0, 100.0 / candidate.size)  # the predictor wants faces of ~100 px or more
    side = math.ceil(2 * candidate.size * scale)
    half = candidate.size * scale / 2
    rect = models.rectangle(
        round(side / 2 - half), round(side / 2 - half), round(side / 2 + half), round(side / 2 + half)
    )
    roll = candidate.roll
    for _ in range(4):
        frame = _frame(candidate.centre, roll, scale, (side, side))
        view = _warp(photo, frame, (side, side))
        with _DLIB_LOCK:
            shape = models.predictor(view, rect)
        points = _to_source(frame, np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
        eye_line = points[42:48].mean(0) - points[36:42].mean(0)
        measured = math.degrees(math.atan2(eye_line[1], eye_line[0]))
        # The predictor is accurate only on near-upright faces: refine until the view is level.
        if abs(measured - roll) < 1.0:
            break
        roll = measured
    return points


def _face(candidate: _Candidate, points: np.ndarray) -> Face:
    eye_line = points[42:48].mean(0) - points[36:42].mean(0)
    roll = math.atan2(eye_line[1], eye_line[0])  # the detection square, turned like the face
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * candidate.size / 2
    cos, sin = math.cos(roll), math.sin(roll)
    corners = corners @ np.array([[cos, sin], [-sin, cos]]) + np.asarray(candidate.centre) - 0.5
    return Face(
        box=(*_point(corners.min(0)), *_point(corners.max(0))),
        left_eye=_point(points[36:42].mean(0)),
        right_eye=_point(points[42:48].mean(0)),
        mouth_left=_point(points[48]),
        mouth_right=_point(points[54]),
        score=candidate.score,
        landmarks=tuple(_point(p) for p in points),
    )


def _point(array: np.ndarray) -> Point:
    return float(array[0]), float(array[1])


def find_faces(image: torch.Tensor, *, config: DetectionConfig = DetectionConfig()) -> list[Face]:
    """All faces in ``image`` (3, H, W) in [0, 1], largest first; ``[]`` when there is none.

    Finds roughly frontal faces (dlib's HOG model covers frontal and somewhat turned heads, not
    profiles) whose roll is within about 30 degrees of one of ``config.roll_angles`` and that are
    at least ~40 px wide at detection scale (smaller ones only through the CNN fallback). Costs
    0.1-0.5 s per roll angle for photos of 800 px or more, plus ~0.2 s per face checked, and
    about 1 s more when the CNN fallback runs (2 CPU cores).
    """
    photo = Image.fromarray(to_uint8_array(image))
    candidates = _hog_candidates(photo, config)
    if config.verify:
        candidates = [c for c in candidates if _cnn_confirms(photo, c)]
    if not candidates and config.cnn_fallback:
        candidates = _cnn_candidates(photo)
    faces = [_face(c, _landmarks(photo, c)) for c in candidates]
    logger.debug("found %d face(s) in a %dx%d image", len(faces), photo.width, photo.height)
    return sorted(faces, key=lambda f: -f.size)


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
