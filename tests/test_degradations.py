"""The paper's robustness degradations (section 5, figure 6) have the stated statistics."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pulse_core.degradations import Degradation, degrade, motion_blur_kernel, parse_degradation
from pulse_core.downsample import downscale


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def kernel_geometry(kernel: torch.Tensor) -> tuple[float, float, float]:
    """(length, angle in [0, 180), spread across) of a line kernel from its second moments."""
    radius = kernel.shape[0] // 2
    rows, cols = torch.meshgrid(
        torch.arange(kernel.shape[0]) - radius, torch.arange(kernel.shape[1]) - radius, indexing="ij"
    )
    x, y, w = cols.double(), -rows.double(), kernel.double()  # y up, so angles are counter-clockwise
    assert abs(float((w * x).sum())) < 1e-6 and abs(float((w * y).sum())) < 1e-6  # centred
    covariance = torch.tensor([[(w * x * x).sum(), (w * x * y).sum()], [(w * x * y).sum(), (w * y * y).sum()]])
    values, vectors = torch.linalg.eigh(covariance)
    # A uniform segment of length L has variance L^2 / 12; bilinear splatting adds 1/6.
    length = math.sqrt(12 * (float(values[1]) - 1 / 6))
    angle = math.degrees(math.atan2(float(vectors[1, 1]), float(vectors[0, 1]))) % 180
    return length, angle, float(values[0])


def test_gaussian_noise_has_the_stated_std_on_mid_grey():
    grey = torch.full((3, 512, 512), 0.5)
    noisy = degrade(grey, Degradation.gaussian(25), generator=generator())
    assert noisy.shape == grey.shape
    # 0.5 is five standard deviations from either clamp, so clamping leaves the std intact;
    # 786k samples estimate it to +-0.02 (one standard error), far finer than 25/255 vs 25/256.
    assert abs(float((noisy - 0.5).std()) * 255 - 25) < 0.06
    assert abs(float((noisy - 0.5).mean())) < 0.002


def test_gaussian_noise_is_added_after_downscaling():
    hr_image = torch.rand(3, 128, 128, generator=generator(1)) * 0.5 + 0.25
    clean = downscale(hr_image[None], 4)[0]
    noisy = degrade(hr_image, Degradation.gaussian(50), generator=generator(2), factor=4)
    assert noisy.shape == (3, 32, 32)
    difference = noisy - clean
    assert abs(float(difference.std()) * 255 - 50) < 6  # 3072 samples, slightly clamped
    assert abs(float(difference.mean())) < 0.02


def test_salt_and_pepper_replaces_the_stated_fraction_of_whole_pixels():
    grey = torch.full((3, 200, 200), 0.5)
    noisy = degrade(grey, parse_degradation("salt_pepper:0.05"), generator=generator())
    hit = noisy[0] != 0.5
    assert abs(float(hit.float().mean()) - 0.05) < 0.005
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[1], noisy[2])  # whole pixels turn
    white = float((noisy[0][hit] == 1.0).float().mean())
    assert 0.45 < white < 0.55 and bool(((noisy[0][hit] == 0.0) | (noisy[0][hit] == 1.0)).all())


@pytest.mark.parametrize(("length", "angle"), [(100, 30), (5, 0), (20, 90), (37, -45), (12.5, 160)])
def test_motion_blur_kernel_has_the_given_length_and_angle(length, angle):
    kernel = motion_blur_kernel(length, angle)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert abs(float(kernel.sum()) - 1.0) < 1e-5 and float(kernel.min()) >= 0
    measured_length, measured_angle, across = kernel_geometry(kernel)
    assert abs(measured_length - length) < 0.1
    assert min(abs(measured_angle - angle % 180), 180 - abs(measured_angle - angle % 180)) < 0.5
    assert across < 0.2  # a line: no spread across it beyond the splatting


def test_motion_blur_of_a_point_is_the_kernel_and_a_constant_stays_constant():
    impulse = torch.zeros(3, 64, 64)
    impulse[:, 32, 20] = 1.0
    blurred = degrade(impulse, Degradation.motion_blur(15, 0), generator=generator())
    kernel = motion_blur_kernel(15, 0)
    radius = kernel.shape[0] // 2
    assert torch.allclose(blurred[0, 32 - radius : 32 + radius + 1, 20 - radius : 20 + radius + 1], kernel, atol=1e-6)
    assert float(blurred[0, 32, 20 + 6]) > 0.05 and float(blurred[0, 32, 20 + 9]) == pytest.approx(0, abs=1e-6)
    flat = torch.full((3, 40, 40), 0.3)
    assert torch.allclose(degrade(flat, Degradation.motion_blur(100, 30), generator=generator()), flat, atol=1e-5)


def test_motion_blur_comes_before_downscaling_and_random_angles_follow_the_generator():
    hr_image = torch.rand(1, 3, 256, 256, generator=generator(3))
    spec = Degradation.motion_blur(25)  # angle None: drawn from the generator
    first = degrade(hr_image, spec, generator=generator(7), factor=8)
    assert first.shape == (1, 3, 32, 32)
    assert torch.equal(first, degrade(hr_image, spec, generator=generator(7), factor=8))
    assert not torch.allclose(first, degrade(hr_image, spec, generator=generator(8), factor=8))
    # The blur averages along a 25 px path at full resolution: far smoother than plain downscaling.
    plain = downscale(hr_image, 8)
    assert float(first.std()) < 0.8 * float(plain.std())
    # An 8 px square smeared 24 px sideways at 256 px spans ~4 LR pixels at 32 px; blurring after
    # the downscaling would smear it over 24.
    square = torch.zeros(3, 256, 256)
    square[:, 124:132, 124:132] = 1.0
    low = degrade(square, Degradation.motion_blur(24, 0), generator=generator(), factor=8)
    columns, rows = low[0].amax(dim=0), low[0].amax(dim=1)
    assert int((columns > 0.01 * columns.max()).sum()) == 4
    assert int((rows > 0.01 * rows.max()).sum()) == 2


def test_outputs_are_clamped_and_reproducible():
    white = torch.ones(2, 3, 16, 16)
    noisy = degrade(white, Degradation.gaussian(50), generator=generator(5))
    assert noisy.shape == white.shape and float(noisy.max()) <= 1.0 and float(noisy.min()) >= 0.0
    assert torch.equal(noisy, degrade(white, Degradation.gaussian(50), generator=generator(5)))
    with pytest.raises(ValueError, match=r"\(3, H, W\) or \(B, 3, H, W\)"):
        degrade(torch.zeros(16, 16), Degradation.gaussian(), generator=generator())


def test_degradation_defaults_are_the_papers_and_validation_is_clear():
    assert Degradation("gaussian").std == 25.0
    assert Degradation.motion_blur() == Degradation("motion_blur", length=100.0, angle=None)
    assert Degradation.salt_pepper().density == 0.05
    assert dataclasses.asdict(Degradation.motion_blur(100, 30)) == {
        "kind": "motion_blur",
        "std": None,
        "length": 100.0,
        "angle": 30.0,
        "density": None,
    }
    with pytest.raises(ValueError, match="density does not apply to gaussian"):
        Degradation("gaussian", density=0.1)
    with pytest.raises(ValueError, match="gaussian std must be > 0"):
        Degradation.gaussian(0)
    with pytest.raises(ValueError, match="salt_pepper density must be in"):
        Degradation.salt_pepper(1.5)
    with pytest.raises(ValueError, match="motion_blur length must be >= 1"):
        Degradation.motion_blur(0.5)
    with pytest.raises(ValueError, match="finite number"):
        Degradation.gaussian(float("nan"))
    with pytest.raises(ValueError, match="unknown degradation kind 'blur'"):
        Degradation("blur")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gaussian:25", Degradation.gaussian(25)),
        ("gaussian", Degradation.gaussian(25)),
        (" Gaussian:50 ", Degradation.gaussian(50)),
        ("motion_blur:100:30", Degradation.motion_blur(100, 30)),
        ("motion-blur:100:-30", Degradation.motion_blur(100, -30)),
        ("motion_blur:60", Degradation.motion_blur(60, None)),
        ("salt_pepper:0.05", Degradation.salt_pepper(0.05)),
        ("salt-pepper", Degradation.salt_pepper(0.05)),
    ],
)
def test_parse_degradation(spec, expected):
    parsed = parse_degradation(spec)
    assert parsed == expected
    assert parse_degradation(parsed.spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blur:3", r"unknown degradation 'blur' in 'blur:3'; expected gaussian\[:STD\]"),
        ("gaussian:loud", r"std must be a number, got 'loud' in 'gaussian:loud'"),
        ("gaussian:25:3", r"gaussian takes at most 1 number\(s\) \(std\), got 2 in 'gaussian:25:3'"),
        ("motion_blur:1:2:3", r"motion_blur takes at most 2 number\(s\) \(length, angle\)"),
        ("salt_pepper:5", r"salt_pepper density must be in \(0, 1\], got 5.0"),
        ("gaussian:-1", r"gaussian std must be > 0"),
    ],
)
def test_parse_degradation_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_degradation(spec)
