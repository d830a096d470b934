"""Face detection and 68-point landmarks for FFHQ alignment, offline with dlib.

Detection: dlib's HOG detector proposes faces on copies of the photo rotated by each of
``DetectionConfig.roll_angles`` (the detector itself only tolerates about +-30 degrees of head
roll); dlib's CNN (MMOD) detector re-checks each proposal on an upright crop to reject the HOG
detector's false positives, and searches the whole photo when HOG finds nothing. Landmarks come
from dlib's ensemble of regression trees (Kazemi & Sullivan 2014, the landmarker FFHQ used). The
models ship in the pip packages ``dlib-bin`` and ``face-recognition-models``: nothing is downloaded.

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
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from pulse_core.imaging import to_uint8_array

__all__ = ["DetectionConfig", "Face", "NoFaceFoundError", "Point", "find_faces"]

logger = logging.getLogger(__name__)

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

