"""The generators' building blocks give the same values and gradients in NCHW and NHWC."""

import pytest
import torch
import torch.nn.functional as F

from pulse_core.generators.layers import (add_channel_scaled, depthwise_kernel, is_channels_last, pointwise_conv,
                                          separable_kernel, styled_instance_norm, upfirdn2d)


def both_layouts(batch: int, channels: int = 8, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))
    return x, x.contiguous(memory_format=torch.channels_last)


def value_and_grad(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
    out = fn(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    (out * weights).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("op", ["noise", "norm", "rgb", "rgb-per-sample", "blur", "upfirdn", "upfirdn-same"])
def test_same_values_and_gradients_in_both_layouts(batch, op):
    rng = torch.Generator().manual_seed(batch)
    noise = torch.randn(batch, 1, 16, 16, generator=rng)
    strength = torch.randn(8, generator=rng)
    scale, shift = torch.rand(batch, 8, generator=rng) + 0.5, torch.randn(batch, 8, generator=rng)
    weight, bias = torch.randn(3, 8, 1, 1, generator=rng), torch.randn(3, generator=rng)
    blur = separable_kernel([1, 2, 1])
    fns = {
        "noise": lambda x: add_channel_scaled(x, noise, strength),
        "norm": lambda x: styled_instance_norm(x, scale, shift),
        "rgb": lambda x: pointwise_conv(x, weight, bias),
        "rgb-per-sample": lambda x: pointwise_conv(x, weight.view(1, 3, 8) * torch.arange(1.0, batch + 1).view(-1, 1, 1),
                                                   bias),
        "blur": lambda x: F.conv2d(x, depthwise_kernel(blur, 8, x.dtype), None, padding=1, groups=8),
        "upfirdn": lambda x: upfirdn2d(x, separable_kernel([1, 3, 3, 1], scale=4.0), up=2, pad=(2, 1)),
        "upfirdn-same": lambda x: upfirdn2d(x, separable_kernel([1, 3, 3, 1]), pad=(1, 1), bias=strength),
    }
    nchw, nhwc = both_layouts(batch)
    out_a, grad_a = value_and_grad(fns[op], nchw)
    out_b, grad_b = value_and_grad(fns[op], nhwc)
    torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-5, atol=1e-5)


def test_styled_instance_norm_normalises_each_sample_and_channel():
    _, x = both_layouts(2, seed=3)
    scale, shift = torch.tensor([[2.0] * 8, [0.5] * 8]), torch.tensor([[1.0] * 8, [-3.0] * 8])
    out = styled_instance_norm(x * 5 + 2, scale, shift)
    mean, std = out.mean(dim=(2, 3)), out.std(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(mean, shift, rtol=0, atol=1e-4)
    torch.testing.assert_close(std, scale, rtol=1e-3, atol=1e-3)


def test_noise_is_added_per_channel_and_layouts_are_kept():
    nchw, nhwc = both_layouts(1)
    noise = torch.ones(1, 1, 16, 16)
    strength = torch.arange(8.0)
    out = add_channel_scaled(nhwc, noise, strength)
    torch.testing.assert_close(out - nhwc, strength.view(1, 8, 1, 1).expand(1, 8, 16, 16))
    assert is_channels_last(out) and is_channels_last(styled_instance_norm(out, torch.ones(1, 8), torch.zeros(1, 8)))
    assert not is_channels_last(add_channel_scaled(nchw, noise, strength))


def test_per_sample_pointwise_weights_match_separate_calls():
    _, x = both_layouts(3, seed=5)
    weights = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(6))
    out = pointwise_conv(x, weights)
    for k in range(3):
        torch.testing.assert_close(out[k:k + 1], pointwise_conv(x[k:k + 1], weights[k].view(4, 8, 1, 1)))


def test_symmetric_padding_equals_explicit_zero_padding():
    x = torch.randn(2, 4, 9, 9, generator=torch.Generator().manual_seed(8))
    kernel = separable_kernel([1, 3, 3, 1])
    explicit = F.conv2d(F.pad(x, (1, 1, 1, 1)), torch.flip(kernel, (0, 1)).expand(4, 1, 4, 4), groups=4)
    torch.testing.assert_close(upfirdn2d(x, kernel, pad=(1, 1)), explicit)


@pytest.mark.parametrize("up,pad,taps", [(2, (2, 1), 4), (2, (1, 0), 4), (2, (3, 2), 4), (4, (4, 1), 6), (2, (1, 0), 3)])
def test_upsampling_equals_explicit_zero_insertion(up, pad, taps):
    """The transposed-convolution form against the definition: zeros after each sample,
    zero padding, then convolution (a flipped correlation) with the kernel."""
    rng = torch.Generator().manual_seed(up + taps)
    x = torch.randn(2, 3, 7, 7, generator=rng)
    kernel = torch.rand(taps, taps, generator=rng)
    bias = torch.randn(3, generator=rng)
    stuffed = torch.zeros(2, 3, 7 * up, 7 * up)
    stuffed[:, :, ::up, ::up] = x
    padded = F.pad(stuffed, (pad[0], pad[1], pad[0], pad[1]))
    expected = F.conv2d(padded, torch.flip(kernel, (0, 1)).expand(3, 1, taps, taps), bias, groups=3)
    torch.testing.assert_close(upfirdn2d(x, kernel, up=up, pad=pad, bias=bias), expected, rtol=1e-5, atol=1e-5)


def test_upsampling_padding_that_no_transposed_convolution_expresses_is_refused():
    with pytest.raises(ValueError, match=r"padding \(1, 1\)"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), separable_kernel([1, 3, 3, 1]), up=2, pad=(1, 1))
