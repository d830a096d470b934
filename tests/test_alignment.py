"""Face detection and FFHQ alignment: geometry on synthetic marks, behaviour on real photos.

Where FFHQ puts the eyes, from its quad construction (``alignment_quad``): for a frontal face, with
v the eye-to-eye and m the eye-to-mouth vector perpendicular to it and |m| <= 1.11 |v|, the crop
square has half-side s = 2|v| and its centre 0.1 m below the eye midpoint, so at output size S the
eyes land at x = 3S/8 and 5S/8 (384 and 640 at 1024, pixel-centre coordinates; subtract 0.5 for
pixel indices) on the row y = S/2 - S|m| / (40|v|), about 488-490 at 1024 for real faces
(|m| / |v| = 0.86 for the astronaut). The mouth corners land on y = S/2 + 0.9 |m| S / (2s).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pulse_core.alignment import (
    DetectionConfig,
    Face,
    NoFaceFoundError,
    align_face,
    alignment_quad,
    find_faces,
    prepare_input,
)
from pulse_core.downsample import downscale
from pulse_core.imaging import decode_image, to_uint8_array

needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib-bin and face-recognition-models are not installed",
)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def ffhq_position(face: Face, point: tuple[float, float], size: int) -> np.ndarray:
    """Where ``point`` of the source lands in the aligned output, in pixel indices."""
    quad = alignment_quad(face)
    axes = np.stack([quad[3] - quad[0], quad[1] - quad[0]], axis=1) / size
    return np.linalg.solve(axes, np.asarray(point) - quad[0]) - 0.5


def blob_centre(channel: torch.Tensor, near: np.ndarray, radius: int) -> np.ndarray:
    """Intensity-weighted centroid (x, y) of ``channel`` (H, W) within ``radius`` of ``near``."""
    x0, y0 = int(round(near[0])) - radius, int(round(near[1])) - radius
    window = channel[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].double()
    ys, xs = torch.meshgrid(torch.arange(window.shape[0]), torch.arange(window.shape[1]), indexing="ij")
    total = window.sum()
    return np.array([float((window * xs).sum() / total) + x0, float((window * ys).sum() / total) + y0])


def marked_photo(size: int, points: dict[str, np.ndarray], sigma: float) -> torch.Tensor:
    """A grey photo with Gaussian marks: eyes in the red channel, mouth corners in the green one."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    photo = torch.full((3, size, size), 0.2, dtype=torch.float64)
    for name, (x, y) in points.items():
        channel = 0 if "eye" in name else 1
        photo[channel] += 0.8 * torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return photo.float().clamp(0, 1)


@pytest.mark.parametrize(
    ("centre", "output_size", "sigma"),
    [
        ((200.0, 200.0), 256, 3.0),  # quad inside the photo
        ((95.0, 250.0), 256, 3.0),  # quad crosses the left edge: reflect padding with FFHQ's fade
        ((200.0, 200.0), 32, 8.0),  # quad over 4x the output: FFHQ's pre-shrink
    ],
)
def test_align_face_puts_landmarks_where_ffhq_does(centre, output_size, sigma):
    eye_gap, mouth_drop, mouth_width, roll = 60.0, 63.0, 50.0, 25.0
    upright = {
        "left_eye": (-eye_gap / 2, 0.0),
        "right_eye": (eye_gap / 2, 0.0),
        "mouth_left": (-mouth_width / 2, mouth_drop),
        "mouth_right": (mouth_width / 2, mouth_drop),
    }
    cos, sin = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    points = {k: np.array([x * cos - y * sin, x * sin + y * cos]) + centre for k, (x, y) in upright.items()}
    photo = marked_photo(400, points, sigma)
    face = Face(box=(0, 0, 1, 1), score=1.0, **{k: tuple(v) for k, v in points.items()})
    assert face.roll == pytest.approx(roll)
    assert face.size == pytest.approx(2 * max(2 * eye_gap, 1.8 * mouth_drop))
    assert face.size == pytest.approx(math.dist(*alignment_quad(face)[:2]))
    aligned = align_face(photo, face, output_size=output_size)
    assert aligned.shape == (3, output_size, output_size)
    assert float(aligned.min()) >= 0 and float(aligned.max()) <= 1
    half_side = max(2 * eye_gap, 1.8 * mouth_drop)
    eye_row = output_size / 2 - output_size * mouth_drop / (40 * eye_gap)
    mouth_row = output_size / 2 + 0.9 * mouth_drop * output_size / (2 * half_side)
    mouth_offset = mouth_width / 2 * output_size / (2 * half_side)
    expected = {
        "left_eye": (3 * output_size / 8, eye_row),
        "right_eye": (5 * output_size / 8, eye_row),
        "mouth_left": (output_size / 2 - mouth_offset, mouth_row),
        "mouth_right": (output_size / 2 + mouth_offset, mouth_row),
    }
    for name, (x, y) in expected.items():
        target = np.array([x - 0.5, y - 0.5])  # pixel-centre coordinates to pixel indices
        assert np.allclose(ffhq_position(face, tuple(points[name]), output_size), target, atol=1e-9)
        channel = aligned[0 if "eye" in name else 1] - 0.2
        radius = max(3, round(3 * sigma * output_size / (2 * half_side)))
        found = blob_centre(channel, target, radius)
        # Sub-pixel: a half-pixel slip in any resampling step (0.1 px or more here) fails.
        assert np.abs(found - target).max() < 0.05, (name, found, target)


def test_alignment_quad_rejects_degenerate_faces():
    with pytest.raises(ValueError, match="degenerate"):
        alignment_quad(Face(box=(0, 0, 1, 1), left_eye=(5, 5), right_eye=(5, 5), mouth_left=(5, 5), mouth_right=(5, 5)))


def test_centre_crop_input_needs_no_detector():
    photo = torch.rand(3, 80, 64, generator=torch.Generator().manual_seed(0))
    prepared = prepare_input(photo, size=16, align=False)
    assert prepared.method == "center-crop" and prepared.aligned is None and prepared.face is None
    assert torch.allclose(prepared.lr_image, downscale(photo[None, :, 8:72, :], 4)[0].clamp(0, 1))
    odd = prepare_input(torch.rand(3, 50, 50), size=32, align=False)
    assert odd.lr_image.shape == (3, 32, 32)
    exact = torch.rand(3, 32, 32)
    assert torch.equal(prepare_input(exact, size=32, align=False).lr_image, exact)
    with pytest.raises(ValueError, match="48 px does not divide 1024 px"):
        prepare_input(photo, size=48, align=False)


def test_detection_config_is_validated():
    with pytest.raises(ValueError, match="max_side"):
        DetectionConfig(max_side=10)
    with pytest.raises(ValueError, match="roll_angles"):
        DetectionConfig(roll_angles=())


# --- real photos (need dlib's models and scikit-image's astronaut) ---------------------------


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    return decode_image(data.astronaut())


@pytest.fixture(scope="module")
def astronaut_face(astronaut) -> Face:
    faces = find_faces(astronaut)
    # HOG alone also fires on the suit (score ~0.1); the CNN check must have removed it.
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="module")
def astronaut_aligned(astronaut, astronaut_face) -> torch.Tensor:
    return align_face(astronaut, astronaut_face)


@needs_dlib
def test_astronaut_face_and_landmarks(astronaut_face):
    face = astronaut_face
    assert len(face.landmarks) == 68 and face.score > 0.5
    assert np.allclose(face.left_eye, (203.4, 101.5), atol=3) and np.allclose(face.right_eye, (246.4, 103.8), atol=3)
    assert np.allclose(face.mouth_left, (199.8, 139.0), atol=4) and np.allclose(
        face.mouth_right, (245.2, 140.7), atol=4
    )
    x0, y0, x1, y1 = face.box
    assert x0 < face.left_eye[0] < face.right_eye[0] < x1 and y0 < face.left_eye[1] < face.mouth_left[1] < y1
    assert 0 < face.roll < 6  # her head leans slightly to her left


@needs_dlib
def test_aligned_astronaut_has_her_eyes_where_ffhq_puts_them(astronaut_face, astronaut_aligned):
    face = astronaut_face
    eyes = [ffhq_position(face, face.left_eye, 1024), ffhq_position(face, face.right_eye, 1024)]
    ratio = math.dist(
        np.mean([face.mouth_left, face.mouth_right], 0), np.mean([face.left_eye, face.right_eye], 0)
    ) / math.dist(face.left_eye, face.right_eye)
    eye_row = 512 - 25.6 * ratio - 0.5
    assert np.allclose(eyes[0], (383.5, eye_row), atol=1.5) and np.allclose(eyes[1], (639.5, eye_row), atol=1.5)
    # Detected afresh in the aligned image, the eyes are where the quad sent them.
    again = find_faces(astronaut_aligned)
    assert len(again) == 1
    assert np.abs(np.array(again[0].left_eye) - eyes[0]).max() < 3
    assert np.abs(np.array(again[0].right_eye) - eyes[1]).max() < 3
    assert abs(again[0].roll) < 1.5


@needs_dlib
def test_rotated_photo_comes_back_upright(astronaut, astronaut_face, astronaut_aligned):
    pivot = np.mean([astronaut_face.left_eye, astronaut_face.right_eye], axis=0)
    rotated_pil = Image.fromarray(to_uint8_array(astronaut)).rotate(20, Image.Resampling.BICUBIC, center=tuple(pivot))
    rotated = decode_image(rotated_pil)
    faces = find_faces(rotated)
    assert len(faces) == 1
    assert faces[0].roll == pytest.approx(astronaut_face.roll - 20, abs=3)  # counter-clockwise on screen
    aligned = align_face(rotated, faces[0])
    upright = find_faces(aligned)
    assert len(upright) == 1 and abs(upright[0].roll) < 2
    assert float((aligned - astronaut_aligned)[:, 200:900, 200:800].abs().mean()) < 0.03


@needs_dlib
def test_face_near_the_edge_is_padded_not_cut(astronaut, astronaut_face, astronaut_aligned):
    tight = astronaut[:, 60:200, 170:290]  # the quad reaches far outside this crop
    faces = find_faces(tight)
    assert len(faces) == 1
    aligned = align_face(tight, faces[0])
    assert float((aligned - astronaut_aligned)[:, 300:800, 300:720].abs().mean()) < 0.03
    # FFHQ fades the mirrored fill towards the photo's median colour far from the photo.
    corner = aligned[:, :64, :64]
    assert torch.allclose(corner.mean(dim=(1, 2)), tight.flatten(1).median(dim=1).values, atol=0.03)
    assert float(corner.std()) < 0.1


@needs_dlib
def test_two_faces_come_back_largest_first(astronaut, monkeypatch):
    head = astronaut[:, 20:240, 110:330]
    small = torch.nn.functional.interpolate(head[None], size=(130, 130), mode="area")[0]
    pair = torch.ones(3, 220, 220 + 130 + 20)
    pair[:, :, :220] = head
    pair[:, 60:190, 240:370] = small
    faces = find_faces(pair)
    assert len(faces) == 2
    assert faces[0].size > faces[1].size
    assert faces[0].right_eye[0] < 220 < faces[1].left_eye[0]
    monkeypatch.setattr("pulse_core.alignment.find_faces", lambda image, config: faces)  # detected above
    first = prepare_input(pair, size=32, face_index=0)
    second = prepare_input(pair, size=32, face_index=1)
    assert first.face == faces[0] and second.face == faces[1]
    assert float((first.lr_image - second.lr_image).abs().mean()) < 0.05  # the same face, twice
    with pytest.raises(ValueError, match=r"face_index 2 is out of range: 2 face\(s\) found"):
        prepare_input(pair, size=32, face_index=2)


@needs_dlib
def test_already_small_face_is_found_by_the_cnn_fallback(astronaut_aligned):
    # Users also bring faces that are already tiny. HOG, even upsampled, misses a 16 px FFHQ crop;
    # the CNN run on an enlarged copy finds it, and the landmarks land near FFHQ's eye positions.
    small = downscale(astronaut_aligned[None], 64)[0].clamp(0, 1)
    assert find_faces(small, config=DetectionConfig(cnn_fallback=False)) == []
    faces = find_faces(small)
    assert len(faces) == 1 and abs(faces[0].roll) < 5
    eye_row = 489.5 / 64 - 0.5
    assert np.allclose(faces[0].left_eye, (5.5, eye_row), atol=0.6) and np.allclose(
        faces[0].right_eye, (9.5, eye_row), atol=0.6
    )


@needs_dlib
@pytest.mark.parametrize("kind", ["coffee", "gradient"])
def test_no_face_raises_with_the_centre_crop_offer(kind):
    if kind == "coffee":
        photo = decode_image(pytest.importorskip("skimage.data").coffee())
    else:
        photo = torch.linspace(0, 1, 300).view(1, 1, 300).expand(3, 200, 300).contiguous()
    with pytest.raises(NoFaceFoundError) as caught:
        prepare_input(photo, size=32, name=f"{kind}.png")
    message = str(caught.value)
    assert message.startswith(f"no face was found in {kind}.png (the detector needs a roughly frontal face")
    assert "use the centre crop instead (align=False)" in message


@needs_dlib
def test_tiny_image_says_it_is_too_small():
    with pytest.raises(
        NoFaceFoundError, match=r"^icon\.png is only 8x6 px, too small to find a face in\. .*align=False"
    ):
        prepare_input(torch.full((3, 6, 8), 0.5), size=16, name="icon.png")


@needs_dlib
@pytest.mark.parametrize("size", [16, 32, 64])
def test_prepare_input_downscales_the_aligned_face(astronaut, astronaut_face, astronaut_aligned, size, monkeypatch):
    monkeypatch.setattr("pulse_core.alignment.find_faces", lambda image, config: [astronaut_face])
    prepared = prepare_input(astronaut, size=size)
    assert prepared.method == "aligned" and prepared.face == astronaut_face
    assert prepared.aligned is not None and prepared.aligned.shape == (3, 1024, 1024)
    assert torch.allclose(prepared.aligned, astronaut_aligned)
    assert prepared.lr_image.shape == (3, size, size)
    assert torch.allclose(prepared.lr_image, downscale(astronaut_aligned[None], 1024 // size)[0].clamp(0, 1))
    shipped = EXAMPLES / f"astronaut_{size}.png"
    if shipped.exists():  # the examples are what the pipeline makes today
        assert float((decode_image(shipped) - prepared.lr_image).abs().max()) < 0.02
