"""Loading weights: every supported format, the fake Hub, the cache, and every failure."""

import pickle
import time

import pytest
import torch

import pulse_core.weights.loading as loading
from pulse_core import WeightsFormatError, WeightsUnavailableError, load_generator
from pulse_core.gaussian_fit import compute_gaussian_fit
from pulse_core.weights import BACKBONES, resolve_source, save_converted
from pulse_core.weights.loading import load_converted
from tests.helpers import pt_bytes, tiny_generator, write_upstream

FIT = 4096  # small Gaussian fits keep these tests fast


def outputs(model, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(2, model.w_dim, generator=rng)
    w_plus = torch.randn(2, model.num_ws, model.w_dim, generator=rng)
    noise = model.make_noise(2, generator=rng)
    return model.mapping(z), model.synthesis(w_plus, noise), model.fit_mean.clone()


def assert_same(a, b):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("architecture,formats", [
    ("stylegan", ["pulse", "lernapparat", "own"]),
    ("stylegan2", ["rosinality", "own"]),
])
def test_every_format_gives_identical_outputs(tmp_path, architecture, formats):
    reference = tiny_generator(architecture, resolution=16, fit_samples=FIT)
    loaded = []
    for fmt in formats:
        if fmt == "own":
            upstream = write_upstream(reference, formats[0], tmp_path / "up")
            path = save_converted(load_converted(resolve_source(upstream)), tmp_path / "own")
        else:
            path = write_upstream(reference, fmt, tmp_path / fmt)
        model = load_generator(path, fit_samples=FIT)
        assert model.architecture == architecture
        loaded.append(outputs(model))
    mapping, image, _ = outputs(reference)
    for out in loaded:
        torch.testing.assert_close(out[0], mapping, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(out[1], image, rtol=1e-6, atol=1e-6)
        assert_same(out, loaded[0])  # the same fit too: same weights, same seed


def test_converted_folder_carries_its_gaussian_fit(tmp_path, monkeypatch):
    reference = tiny_generator("stylegan2", resolution=16, fit_samples=FIT)
    upstream = write_upstream(reference, "rosinality", tmp_path / "up")
    fit = compute_gaussian_fit(reference, num_samples=FIT)
    folder = save_converted(load_converted(resolve_source(upstream)), tmp_path / "own", fit)
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", "gaussian_fit.safetensors"}
    monkeypatch.setattr(loading, "compute_gaussian_fit", lambda *a, **k: pytest.fail("fit recomputed"))
    model = load_generator(folder, fit_samples=FIT)
    torch.testing.assert_close(model.fit_mean, fit.mean)


def test_gaussian_fit_is_cached_per_checkpoint(tmp_path, monkeypatch):
    path = write_upstream(tiny_generator("stylegan", resolution=16), "pulse", tmp_path / "w")
    first = load_generator(path, fit_samples=FIT)
    cached = list(loading.fit_cache_dir().glob("*.safetensors"))
    assert len(cached) == 1
    monkeypatch.setattr(loading, "compute_gaussian_fit", lambda *a, **k: pytest.fail("fit recomputed"))
    second = load_generator(path, fit_samples=FIT)
    torch.testing.assert_close(first.fit_std, second.fit_std)


def test_fake_hub_download_records_commit_and_reuses_cache(fake_hub, tmp_path):
    model = tiny_generator("stylegan2", resolution=16)
    data = write_upstream(model, "rosinality", tmp_path / "w").read_bytes()
    commit = fake_hub.add_file("someone/tiny-sg2", "stylegan2-ffhq-config-f.pt", data)
    first = load_generator("someone/tiny-sg2", fit_samples=FIT)
    assert first.revision == commit
    assert first.source == "someone/tiny-sg2:stylegan2-ffhq-config-f.pt"
    assert first.backbone == "stylegan2-ffhq"
    assert fake_hub.count("GET", "stylegan2-ffhq-config-f.pt") == 1
    fake_hub.stop()
    start = time.perf_counter()
    second = load_generator("someone/tiny-sg2", fit_samples=FIT)
    assert time.perf_counter() - start < 8  # no long retries when the Hub is down
    assert second.revision == commit
    assert_same(outputs(first), outputs(second))


def test_backbone_default_comes_from_the_registry(fake_hub, tmp_path):
    entry = BACKBONES["stylegan2-ffhq"]
    data = write_upstream(tiny_generator("stylegan2", resolution=16), "rosinality", tmp_path / "w").read_bytes()
    commit = fake_hub.add_file(entry.repo_id, entry.filename, data)
    model = load_generator(fit_samples=FIT)
    assert (model.source, model.revision) == (f"{entry.repo_id}:{entry.filename}", commit)


def test_pinned_revision_and_pulse_pair_from_hub(fake_hub, tmp_path):
    model = tiny_generator("stylegan", resolution=16)
    folder = tmp_path / "pair"
    write_upstream(model, "pulse", folder)
    fake_hub.add_file("lab/pulse-sg1", "synthesis.pt", (folder / "synthesis.pt").read_bytes())
    commit = fake_hub.add_file("lab/pulse-sg1", "mapping.pt", (folder / "mapping.pt").read_bytes())
    fake_hub.add_file("lab/pulse-sg1", "README.md", b"changed later")  # main moves on
    loaded = load_generator("lab/pulse-sg1", revision=commit, fit_samples=FIT)
    assert loaded.revision == commit
    assert loaded.architecture == "stylegan"
    torch.testing.assert_close(outputs(loaded)[1], outputs(model)[1], rtol=1e-6, atol=1e-6)


def test_hub_unreachable_and_nothing_cached(fake_hub):
    fake_hub.stop()
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        load_generator("someone/missing-model:weights.pt")
    assert time.perf_counter() - start < 8
    text = str(info.value)
    assert "'weights.pt' from Hub repo 'someone/missing-model'" in text
    assert "could not be reached" in text and str(fake_hub.cache_dir) in text
    assert "PULSE_WEIGHTS" in text and "--weights" in text


def test_hub_repo_and_file_not_found(fake_hub):
    fake_hub.add_file("someone/model", "other.bin", b"x")
    with pytest.raises(FileNotFoundError, match="'someone/model' has no file 'weights.pt'"):
        load_generator("someone/model:weights.pt")
    with pytest.raises(FileNotFoundError, match="has none of model.safetensors"):
        load_generator("someone/model")
    with pytest.raises(WeightsUnavailableError, match="'nobody/nothing' does not exist"):
        load_generator("nobody/nothing:weights.pt")


def test_corrupted_hub_download_is_detected(fake_hub, tmp_path):
    data = write_upstream(tiny_generator("stylegan2", resolution=16), "rosinality", tmp_path / "w").read_bytes()
    fake_hub.add_file("someone/tiny", "stylegan2-ffhq-config-f.pt", data)
    fake_hub.corrupt = True
    with pytest.raises(WeightsUnavailableError, match="is corrupted .*sha256"):
        load_generator("someone/tiny")


def test_local_failures_have_clear_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder: .*nowhere.pt"):
        load_generator(tmp_path / "nowhere.pt")
    unknown = tmp_path / "resnet.pt"
    unknown.write_bytes(pt_bytes({"conv1.weight": torch.zeros(1), "fc.bias": torch.zeros(1)}))
    with pytest.raises(WeightsFormatError, match="not a supported generator checkpoint.*conv1.weight"):
        load_generator(unknown)
    good = write_upstream(tiny_generator("stylegan2", resolution=16), "rosinality", tmp_path / "w")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsFormatError, match="truncated.pt is truncated or corrupted"):
        load_generator(truncated)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="empty"):
        load_generator(empty)
    bad_safetensors = tmp_path / "model.safetensors"
    bad_safetensors.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsFormatError, match="truncated or corrupted, or not a safetensors"):
        load_generator(bad_safetensors)


class Executable:
    """Any pickled object that needs code to rebuild."""


def test_pickle_that_needs_code_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save({"g_ema": Executable()}, path)
    with pytest.raises(WeightsFormatError, match="needs code to unpickle.*weights_only=True"):
        load_generator(path)
    pkl = tmp_path / "network-snapshot.pkl"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightsFormatError, match="never unpickles untrusted code"):
        load_generator(pkl)


def test_checkpoint_of_another_architecture(tmp_path):
    path = write_upstream(tiny_generator("stylegan2", resolution=16), "rosinality", tmp_path / "w")
    with pytest.raises(WeightsFormatError, match="holds a StyleGAN2 checkpoint, but backbone 'stylegan-ffhq' is StyleGAN"):
        load_generator(path, backbone="stylegan-ffhq")


def test_key_table_names_missing_unexpected_and_misshaped_keys(tmp_path):
    path = write_upstream(tiny_generator("stylegan2", resolution=16), "rosinality", tmp_path / "w")
    ckpt = torch.load(path, weights_only=True)
    del ckpt["g_ema"]["convs.0.activate.bias"]
    ckpt["g_ema"]["extra.weight"] = torch.zeros(3)
    ckpt["g_ema"]["style.2.bias"] = torch.zeros(7)
    torch.save(ckpt, path)
    with pytest.raises(WeightsFormatError) as info:
        load_generator(path)
    text = str(info.value)
    assert "missing keys: convs.0.activate.bias" in text
    assert "unexpected keys: extra.weight" in text
    assert "style.2.bias has shape (7,), expected (32,)" in text


def test_pulse_half_pair_is_explained(tmp_path):
    folder = tmp_path / "pair"
    write_upstream(tiny_generator("stylegan", resolution=16), "pulse", folder)
    (folder / "mapping.pt").unlink()
    with pytest.raises(FileNotFoundError, match="needs mapping.pt beside it"):
        load_generator(folder / "synthesis.pt")


def test_backbone_without_public_default():
    with pytest.raises(WeightsUnavailableError, match="'stylegan-ffhq' has no public default"):
        load_generator(backbone="stylegan-ffhq")
