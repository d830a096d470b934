"""Weights derived once per frozen parameter follow the parameter when it changes."""

import torch

from pulse_core.generators.derived import derived
from tests.helpers import tiny_generator


def test_cached_until_the_parameter_changes():
    param = torch.nn.Parameter(torch.ones(4), requires_grad=False)
    calls = []

    def make(p):
        calls.append(1)
        return p * 2

    assert torch.equal(derived(param, "double", make), torch.full((4,), 2.0))
    assert derived(param, "double", make) is derived(param, "double", make) and len(calls) == 1
    with torch.no_grad():
        param.add_(1)  # in place: a new version
    assert torch.equal(derived(param, "double", make), torch.full((4,), 4.0)) and len(calls) == 2
    param.data = torch.zeros(4)  # new storage
    assert torch.equal(derived(param, "double", make), torch.zeros(4)) and len(calls) == 3
    assert torch.equal(derived(param, "triple", lambda p: p * 3), torch.zeros(4))


def test_trainable_parameters_are_never_cached():
    param = torch.nn.Parameter(torch.ones(3))
    out = derived(param, "double", lambda p: p * 2)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    assert torch.equal(param.grad, torch.full((3,), 2.0))


def test_reloaded_weights_render_the_new_image():
    for architecture in ("stylegan", "stylegan2"):
        model = tiny_generator(architecture, resolution=16, seed=0)
        other = tiny_generator(architecture, resolution=16, seed=1)
        w_plus = model.latent_to_w_plus(torch.randn(1, model.num_ws, model.w_dim, generator=torch.Generator().manual_seed(2)))
        noise = model.make_noise(1, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            model.synthesis(w_plus, noise)  # fills the caches
            model.load_state_dict(other.state_dict())
            torch.testing.assert_close(model.synthesis(w_plus, noise), other.synthesis(w_plus, noise))


def test_first_use_under_inference_mode_leaves_the_search_usable():
    from pulse_core import SearchConfig
    from pulse_core.search import search
    from tests.helpers import generated_target

    model = tiny_generator("stylegan2", resolution=16, seed=4)
    with torch.inference_mode():  # a natural way to render, before any search
        model.synthesis(model.latent_to_w_plus(torch.zeros(1, model.num_ws, model.w_dim)), model.make_noise(1))
    result = search(model, generated_target(model, size=4), SearchConfig(steps=3))
    assert result.steps_run == 3
