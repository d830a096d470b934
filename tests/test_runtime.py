"""Runtime choices: what the search iterations run with on each kind of CPU."""

import torch

from pulse_core import runtime
from pulse_core.runtime import RuntimeConfig, choose_runtime, prepare_generator
from tests.helpers import tiny_generator


def test_cpu_choices_follow_the_instruction_set(monkeypatch):
    monkeypatch.delenv("PULSE_PLAIN", raising=False)
    cases = {(True, True): RuntimeConfig(torch.bfloat16, channels_last=True, micro_batch=1),  # AMX: NHWC bf16
             (True, False): RuntimeConfig(torch.bfloat16, channels_last=False, micro_batch=1),  # AVX512-BF16 only
             (False, False): RuntimeConfig(micro_batch=1)}  # no native bf16: float32
    for (bf16, amx), expected in cases.items():
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: bf16)
        monkeypatch.setattr(runtime, "cpu_has_amx", lambda: amx)
        assert choose_runtime("cpu") == expected
        assert choose_runtime("cpu", plain=True) == RuntimeConfig.plain()
    monkeypatch.setenv("PULSE_PLAIN", "1")
    assert choose_runtime("cpu") == RuntimeConfig.plain()


def test_prepare_generator_lays_out_weights_without_changing_images():
    model = tiny_generator("stylegan", resolution=16)
    w_plus = model.latent_to_w_plus(torch.randn(1, model.num_ws, model.w_dim, generator=torch.Generator().manual_seed(0)))
    noise = model.make_noise(1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model.synthesis(w_plus, noise)
        prepare_generator(model, RuntimeConfig(torch.bfloat16, channels_last=True))
        after = model.synthesis(w_plus, noise)
    assert model.const.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_micro_batch_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="micro_batch"):
        RuntimeConfig(micro_batch=0)


def test_amx_capped_by_onednn_counts_as_absent(monkeypatch):
    monkeypatch.setattr("builtins.open", lambda *a, **k: __import__("io").StringIO("flags : avx512_bf16 amx_bf16\n"))
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert runtime.cpu_has_amx()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert not runtime.cpu_has_amx()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert runtime.cpu_has_amx()
