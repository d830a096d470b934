"""Generators against the upstream reference vectors (../shared/golden) and basic contracts."""

import pytest
import torch
from safetensors.torch import load_file

from pulse_core.gaussian_fit import compute_gaussian_fit, gaussian_fit_from_z
from pulse_core.weights.formats import build_generator, convert_pulse, convert_rosinality
from tests.helpers import tiny_generator


def assert_close(out, ref):
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def load_v1(golden):
    syn = torch.load(golden / "stylegan1/synthesis.pt", map_location="cpu", weights_only=True)
    mapping = torch.load(golden / "stylegan1/mapping.pt", map_location="cpu", weights_only=True)
    return build_generator(convert_pulse(syn, mapping)), load_file(golden / "stylegan1/vectors.safetensors")


def load_v2(golden):
    ckpt = torch.load(golden / "stylegan2/ckpt.pt", map_location="cpu", weights_only=True)
    return build_generator(convert_rosinality(ckpt)), load_file(golden / "stylegan2/vectors.safetensors")


@pytest.mark.parametrize("loader", [load_v1, load_v2], ids=["stylegan", "stylegan2"])
def test_golden_mapping_synthesis_and_fit(golden, loader):
    model, ref = loader(golden)
    assert_close(model.mapping(ref["z"]), ref["w"])
    noise = [ref[f"noise_{i}"] for i in range(model.num_noise)]
    assert [tuple(n.shape[2:]) for n in noise] == model.noise_shapes
    image = model.synthesis(ref["w_plus"], noise)
    assert image.shape == (2, 3, model.resolution, model.resolution)
    assert_close(image, ref["image"])
    fit = gaussian_fit_from_z(model, ref["fit_z"], chunk_size=1000)  # chunked: 5 chunks
    assert_close(fit.mean, ref["fit_mean"])
    assert_close(fit.std, ref["fit_std"])


@pytest.mark.parametrize("loader", [load_v1, load_v2], ids=["stylegan", "stylegan2"])
def test_golden_synthesis_in_channels_last_layout(golden, loader):
    """The NHWC path (chosen on CPUs with AMX) computes the same images: as a batch, and one
    sample at a time (StyleGAN2 then folds the style into the weights)."""
    model, ref = loader(golden)
    model.to(memory_format=torch.channels_last)
    noise = [ref[f"noise_{i}"] for i in range(model.num_noise)]
    with torch.no_grad():
        assert_close(model.synthesis(ref["w_plus"], noise), ref["image"])
        for k in range(2):
            assert_close(model.synthesis(ref["w_plus"][k:k + 1], [n[k:k + 1] for n in noise]), ref["image"][k:k + 1])


@pytest.mark.parametrize("loader", [load_v1, load_v2], ids=["stylegan", "stylegan2"])
def test_forward_transform_inverts_the_fit_space(golden, loader):
    model, ref = loader(golden)
    w = model.mapping(ref["z"])
    assert_close(model.apply_last_activation(model.invert_last_activation(w)), w)


def test_stylegan1_golden_shape_facts(golden):
    model, _ = load_v1(golden)
    assert (model.resolution, model.w_dim, model.num_ws, model.num_noise) == (128, 64, 12, 12)
    assert model.config.channels == (32, 32, 32, 32, 32, 16)


def test_stylegan2_golden_shape_facts(golden):
    model, _ = load_v2(golden)
    assert (model.resolution, model.w_dim, model.num_ws, model.num_noise) == (64, 64, 10, 9)
    assert model.noise_shapes[:3] == [(4, 4), (8, 8), (8, 8)]


def test_real_ffhq_shapes_without_weights():
    from pulse_core.generators import StyleGAN, StyleGAN2, StyleGAN2Config, StyleGANConfig

    v1 = StyleGAN(StyleGANConfig.from_fmaps(1024))
    v2 = StyleGAN2(StyleGAN2Config.from_channel_base(1024))
    assert (v1.num_ws, v1.num_noise, v2.num_ws, v2.num_noise) == (18, 18, 18, 17)
    assert v1.config.channels == (512, 512, 512, 512, 256, 128, 64, 32, 16)
    assert v2.config.channels == (512, 512, 512, 512, 512, 256, 128, 64, 32)


def test_gaussian_fit_is_repeatable_and_matches_a_direct_fit():
    model = tiny_generator("stylegan2", resolution=16)
    a = compute_gaussian_fit(model, num_samples=100_000, seed=3)  # two chunks
    b = compute_gaussian_fit(model, num_samples=100_000, seed=3)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.std, b.std)
    assert (a.num_samples, a.seed) == (100_000, 3)
    z = torch.randn((100_000, model.w_dim), generator=torch.Generator().manual_seed(9))
    x = model.invert_last_activation(model.mapping(z))
    # Another draw of the same size estimates the same moments to within sampling error.
    torch.testing.assert_close(a.mean, x.mean(0), rtol=0, atol=0.03 * x.std(0).max().item())
    torch.testing.assert_close(a.std, x.std(0), rtol=0.03, atol=0)
    c = compute_gaussian_fit(model, num_samples=5000, seed=4)
    assert not torch.allclose(a.mean, c.mean)


@pytest.mark.parametrize("architecture", ["stylegan", "stylegan2"])
def test_synthesis_rejects_bad_shapes(architecture):
    model = tiny_generator(architecture, resolution=16)
    noise = model.make_noise(1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"w_plus must be \(B, 6, 32\)"):
        model.synthesis(torch.zeros(1, 5, 32), noise)
    with pytest.raises(ValueError, match="noise maps"):
        model.synthesis(torch.zeros(1, 6, 32), noise[:-1])


def test_parameters_are_frozen():
    model = tiny_generator("stylegan", resolution=16)
    assert not any(p.requires_grad for p in model.parameters())
