"""PULSE's bicubic downscaling operator against the reference vectors and its own definition."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from pulse_core.downsample import bicubic_kernel, downscale, downscale_factor


def padded_convolution(image: torch.Tensor, factor: int) -> torch.Tensor:
    """The operator as the reference code writes it: reflect padding, then a strided
    depthwise convolution with the 1-D kernel along rows, then along columns."""
    kernel = bicubic_kernel(factor, dtype=image.dtype)
    taps, channels = kernel.numel(), image.shape[1]
    before = (taps - factor) // 2
    after = taps - factor - before
    out = F.pad(image, (0, 0, before, after), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, taps, 1).expand(channels, 1, taps, 1), stride=(factor, 1), groups=channels)
    out = F.pad(out, (before, after, 0, 0), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, 1, taps).expand(channels, 1, 1, taps), stride=(1, factor), groups=channels)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_matches_the_reference_vectors(golden, factor):
    ref = load_file(golden / "bicubic/vectors.safetensors")
    out = downscale(ref["hr"], factor)
    expected = ref[f"lr_x{factor}"]
    assert out.shape == expected.shape == (2, 3, 128 // factor, 128 // factor)
    assert torch.allclose(out, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    assert (out - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("size,factor", [(64, 2), (64, 16), (128, 32), (96, 32)])
def test_equals_padding_and_strided_convolution(size, factor):
    image = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size + factor))
    assert (downscale(image, factor) - padded_convolution(image, factor)).abs().max().item() < 1e-6


def test_gradient_equals_the_convolution_form_and_layout_does_not_matter():
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    weights = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    grads = []
    for fn, x in [(downscale, image), (padded_convolution, image),
                  (downscale, image.contiguous(memory_format=torch.channels_last))]:
        x = x.clone().requires_grad_(True)
        (fn(x, 16) * weights).sum().backward()
        grads.append(x.grad)
    assert (grads[0] - grads[1]).abs().max().item() < 1e-6
    assert (grads[0] - grads[2]).abs().max().item() < 1e-6


def test_constant_images_stay_constant_and_factor_one_is_identity():
    image = torch.full((1, 3, 32, 32), 0.37)
    assert torch.allclose(downscale(image, 8), torch.full((1, 3, 4, 4), 0.37), atol=1e-6)
    assert downscale(image, 1) is image


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        downscale(torch.zeros(1, 3, 24, 24), 3)
    with pytest.raises(ValueError, match="not divisible"):
        downscale(torch.zeros(1, 3, 20, 20), 8)
    with pytest.raises(ValueError, match="too small"):
        downscale(torch.zeros(1, 3, 16, 16), 16)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        downscale(torch.zeros(3, 16, 16), 2)
    assert downscale_factor(1024, 32) == 32
    with pytest.raises(ValueError, match="not a power of two"):
        downscale_factor(768, 256)
