"""The PULSE search on tiny random generators: success, failure, best iterate, sphere,
schedules, geocross, seeds, callbacks, noise modes and input checks."""

import copy
import math

import pytest
import torch

from pulse_core import LossWeights, SearchConfig
from pulse_core.downsample import downscale
from pulse_core.losses import geocross
from pulse_core.runtime import RuntimeConfig, prepare_generator
from pulse_core.schedules import lr_factor
from pulse_core.search import InputError, resample_noise, search
from tests.helpers import checkerboard, generated_target, tiny_generator


@pytest.fixture(scope="module")
def sg2():
    return tiny_generator("stylegan2", resolution=32)


@pytest.fixture(scope="module")
def sg1():
    return tiny_generator("stylegan", resolution=32)


@pytest.mark.parametrize("name", ["sg1", "sg2"])
def test_generator_made_target_is_found(request, name):
    model = request.getfixturevalue(name)
    target = generated_target(model)
    result = search(model, target, SearchConfig(steps=60, samples=2, seed=1))
    assert all(s.success for s in result.samples), result.summary
    for s in result.samples:
        assert s.loss <= 2e-3
        assert s.image.shape == (3, 32, 32) and s.downscaled.shape == (3, 8, 8)
        # The reported loss is that of the returned image, recomputed from it.
        recomputed = (downscale(s.image[None], 4)[0] - target).pow(2).mean().item()
        assert recomputed == pytest.approx(s.loss, rel=1e-3, abs=1e-7)
    assert result.summary.startswith("2 of 2 samples found within eps = 2.00e-3")


def test_unreachable_target_is_reported_as_failure(sg2):
    result = search(sg2, checkerboard(), SearchConfig(steps=30, samples=2, seed=0))
    assert not result.successes
    for s in result.samples:
        assert s.loss > 0.05 and not s.success
        assert s.loss == pytest.approx(min(s.history), rel=0.05)  # of the clamped image
        assert ("no image found that downscales to the input within eps = 2.00e-3; "
                f"best {s.loss:.2e}".replace("e-0", "e-") + " after 30 steps") in s.message
        assert s.to_dict()["success"] is False
    assert result.summary.startswith("0 of 2 samples found")


def test_best_iterate_is_returned_not_the_last(sg2):
    # A large fixed learning rate makes the loss jump around, so the last iterate is worse.
    config = SearchConfig(steps=25, samples=1, seed=3, learning_rate=1.5, schedule="fixed", noise_mode="fixed")
    sample = search(sg2, generated_target(sg2), config, runtime=RuntimeConfig.plain()).samples[0]
    best = min(sample.history)
    assert sample.history[-1] > best * 1.2
    assert sample.history[sample.best_step] == best and sample.best_step < 24
    assert sample.loss == pytest.approx(best, rel=0.05)  # re-rendered, clamped to [0, 1]
    assert sample.loss < sample.history[-1] / 1.15


def test_latents_and_trainable_noise_stay_on_their_spheres(sg2):
    config = SearchConfig(steps=10, samples=2, seed=0, trainable_noise_layers=3)
    result = search(sg2, generated_target(sg2), config)
    for s in result.samples:
        norms = s.latent.norm(dim=-1)
        torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(sg2.w_dim)), rtol=1e-5, atol=1e-5)
        for i in range(3):
            h, w = sg2.noise_shapes[i]
            assert s.noise[i].norm().item() == pytest.approx(math.sqrt(h * w), rel=1e-5)
        assert s.noise[-1].abs().max().item() == 0.0  # the last map is zeroed by default


def test_schedules_match_hand_computed_values():
    assert lr_factor("fixed", 37, 100) == 1.0
    assert lr_factor("linear1cycle", 0, 100) == pytest.approx(0.1)
    assert lr_factor("linear1cycle", 50, 100) == pytest.approx(1.0)
    assert lr_factor("linear1cycle", 75, 100) == pytest.approx(0.55)
    assert lr_factor("linear1cycledrop", 0, 100) == pytest.approx(0.1)
    assert lr_factor("linear1cycledrop", 45, 100) == pytest.approx(1.0)
    assert lr_factor("linear1cycledrop", 90, 100) == pytest.approx(0.1)
    assert lr_factor("linear1cycledrop", 95, 100) == pytest.approx(0.0505)
    assert lr_factor("linear1cycledrop", 99, 100) == pytest.approx(0.1 - 0.9 * 0.099)


def test_geocross_matches_hand_computed_values():
    # Two orthogonal rows in 2-D: the angle between them is pi/2; the K x K mean has two
    # such entries out of four (the diagonal is ~0), times d = 2, over 8.
    w = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert geocross(w).item() == pytest.approx((math.pi / 2) ** 2 * 2 * 2 / 4 / 8, rel=1e-4)
    # Opposite rows: angle pi.
    w = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    assert geocross(w).item() == pytest.approx(math.pi**2 * 2 * 2 / 4 / 8, rel=1e-4)
    # Equal rows and a single row give (almost) nothing.
    assert geocross(torch.ones(2, 3, 4)).abs().max().item() < 1e-6
    assert geocross(torch.ones(2, 1, 4)).tolist() == [0.0, 0.0]


def test_seeds_are_repeatable_and_samples_independent(sg2):
    target = generated_target(sg2)
    config = SearchConfig(steps=8, samples=3, seed=5)
    plain = RuntimeConfig.plain()
    a = search(sg2, target, config, runtime=plain)
    b = search(sg2, target, config, runtime=plain)
    for x, y in zip(a.samples, b.samples):
        assert torch.equal(x.image, y.image) and x.history == y.history
    assert [s.seed for s in a.samples] == [5, 6, 7]
    assert (a.samples[0].image - a.samples[1].image).abs().mean() > 1e-3
    # Sample k of a batch follows the path of a single run seeded seed + k.
    alone = search(sg2, target, config.replace(samples=1, seed=6), runtime=plain).samples[0]
    torch.testing.assert_close(alone.image, a.samples[1].image, rtol=1e-4, atol=1e-4)


def test_seed_zero_is_a_seed(sg2):
    target = generated_target(sg2)
    a = search(sg2, target, SearchConfig(steps=3, seed=0)).samples[0]
    b = search(sg2, target, SearchConfig(steps=3, seed=0)).samples[0]
    c = search(sg2, target, SearchConfig(steps=3, seed=1)).samples[0]
    assert torch.equal(a.latent, b.latent) and not torch.equal(a.latent, c.latent)


def test_callback_reports_each_step_and_can_stop(sg2):
    seen = []

    def callback(info):
        seen.append(info)
        return info.step == 4

    config = SearchConfig(steps=50, samples=2, preview_every=2)
    result = search(sg2, generated_target(sg2), config, callback=callback)
    assert result.stopped and result.steps_run == 5
    assert [i.step for i in seen] == [0, 1, 2, 3, 4]
    assert all(len(i.losses) == 2 and len(i.best) == 2 for i in seen)
    assert all(b <= l for i in seen for b, l in zip(i.best, i.losses))
    assert [i.preview is not None for i in seen] == [True, False, True, False, True]
    assert seen[0].preview.shape == (2, 3, 32, 32)
    assert "stopped after 5 of 50 steps" in result.summary
    assert len(result.samples) == 2 and all(len(s.history) == 5 for s in result.samples)


def test_noise_modes(sg2):
    target = generated_target(sg2)
    zero = search(sg2, target, SearchConfig(steps=3, noise_mode="zero")).samples[0]
    assert all(n.abs().max().item() == 0 for n in zero.noise)
    fixed = search(sg2, target, SearchConfig(steps=3, noise_mode="fixed", zero_noise_layers=(0, 2))).samples[0]
    trainable = search(sg2, target, SearchConfig(steps=3, noise_mode="trainable", trainable_noise_layers=2,
                                                 zero_noise_layers=(0, 2))).samples[0]
    assert fixed.noise[0].abs().max() == 0 and fixed.noise[2].abs().max() == 0
    assert fixed.noise[-1].abs().max() > 0  # an explicit list replaces the default
    assert not torch.equal(fixed.noise[1], trainable.noise[1])  # map 1 was trained
    assert torch.equal(fixed.noise[3], trainable.noise[3])  # map 3 was not


def test_tiled_latent_and_l1_only_loss(sg1):
    config = SearchConfig(steps=40, tile_latent=True, loss=LossWeights(l2=0.0, l1=10.0, geocross=0.0))
    result = search(sg1, generated_target(sg1), config)
    assert result.samples[0].latent.shape == (1, sg1.w_dim)
    assert result.samples[0].history[-1] < result.samples[0].history[0]


def test_resample_noise_keeps_latent_and_varies_detail(sg2):
    target = generated_target(sg2)
    found = search(sg2, target, SearchConfig(steps=40, samples=2, seed=1))
    varied = resample_noise(sg2, target, found, noise_seed=99, steps=10)
    assert varied.steps_run == 10 and [s.seed for s in varied.samples] == [99, 100]
    for before, after in zip(found.samples, varied.samples):
        assert not torch.equal(before.noise[0], after.noise[0])
        assert (before.image - after.image).abs().mean() > 1e-4
        assert after.success == (after.loss <= after.eps)


@pytest.mark.parametrize("bad,message", [
    (torch.rand(3, 8, 6), "must be square; it is 6x8 px"),
    (torch.rand(1, 8, 8), r"one RGB image \(3, h, w\)"),
    (torch.rand(3, 8, 8) * 2, r"must lie in \[0, 1\]"),
    (torch.rand(3, 12, 12), "cannot be reached from the generator's 32 px by halving; use one of 16, 8, 4 px"),
    (torch.full((3, 8, 8), float("nan")), "NaN"),
])
def test_bad_targets_are_refused(sg2, bad, message):
    with pytest.raises(InputError, match=message):
        search(sg2, bad, SearchConfig(steps=1))


def test_config_validation():
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        SearchConfig(steps=0)
    with pytest.raises(ValueError, match="noise_mode must be one of fixed, trainable, zero"):
        SearchConfig(noise_mode="random")
    with pytest.raises(ValueError, match="at least one downscaling loss weight"):
        LossWeights(l2=0, l1=0)
    with pytest.raises(ValueError, match="out of range"):
        SearchConfig(zero_noise_layers=(40,)).zeroed_layers(17)


@pytest.mark.parametrize("name", ["sg1", "sg2"])
def test_bfloat16_iterations_find_the_same_successes_with_float32_verdicts(request, name):
    model = request.getfixturevalue(name)
    config = SearchConfig(steps=60, samples=2, seed=1)
    outcomes = {}
    nhwc = prepare_generator(copy.deepcopy(model), RuntimeConfig(torch.bfloat16, channels_last=True))
    runtimes = {"plain": (model, RuntimeConfig.plain()), "bf16": (model, RuntimeConfig(torch.bfloat16)),
                "bf16-nhwc": (nhwc, RuntimeConfig(torch.bfloat16, channels_last=True))}
    for label, (generator, runtime) in runtimes.items():
        found = search(generator, generated_target(model), config, runtime=runtime)
        alone = search(generator, generated_target(model), config.replace(samples=1), runtime=runtime)
        missed = search(generator, checkerboard(), config.replace(steps=10), runtime=runtime)
        assert found.samples[0].image.dtype == torch.float32
        outcomes[label] = [s.success for s in found.samples + alone.samples + missed.samples]
    assert outcomes["bf16"] == outcomes["bf16-nhwc"] == outcomes["plain"] == [True, True, True, False, False]


def test_compiled_iterations_find_the_same_successes(sg2):
    config = SearchConfig(steps=60, samples=2, seed=1)
    compiled = RuntimeConfig(compile=True)
    found = search(sg2, generated_target(sg2), config, runtime=compiled)
    missed = search(sg2, checkerboard(), config.replace(steps=5), runtime=compiled)
    plain = search(sg2, generated_target(sg2), config, runtime=RuntimeConfig.plain())
    assert [s.success for s in found.samples + missed.samples] == [True, True, False, False]
    for a, b in zip(found.samples, plain.samples):  # compiled float32 follows the eager path
        assert a.loss == pytest.approx(b.loss, rel=1e-2)
    assert found.to_dict()["timings"]["compile"] is True


def test_samples_one_at_a_time_follow_the_batched_search(sg1):
    """micro_batch=1 (the CPU default) evaluates samples in separate passes: same paths,
    same verdicts, same previews as the whole batch at once."""
    config = SearchConfig(steps=25, samples=3, seed=2, preview_every=10)
    target = generated_target(sg1)
    results, previews = {}, {}
    for label, runtime in {"all": RuntimeConfig.plain(), "one": RuntimeConfig(micro_batch=1),
                           "two": RuntimeConfig(micro_batch=2)}.items():
        seen = []
        results[label] = search(sg1, target, config, runtime=runtime,
                                callback=lambda info: seen.append(info.preview) and None)
        previews[label] = [p for p in seen if p is not None]
    for label in ("one", "two"):
        for a, b in zip(results[label].samples, results["all"].samples):
            assert a.success == b.success
            # The same arithmetic up to float rounding (batched and single convolutions sum in
            # another order), which Adam's normalised steps amplify slowly over the steps.
            assert a.history[:5] == pytest.approx(b.history[:5], rel=1e-5)
            assert a.loss == pytest.approx(b.loss, rel=1e-2)
            torch.testing.assert_close(a.latent, b.latent, rtol=0, atol=5e-3)
        assert len(previews[label]) == len(previews["all"]) == 3
        assert all(p.shape == (3, 3, 32, 32) for p in previews[label])
        torch.testing.assert_close(previews[label][0], previews["all"][0], rtol=1e-5, atol=1e-5)
