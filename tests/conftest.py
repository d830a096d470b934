import os

import pytest

# Never reach the real Hub from the tests, and keep caches out of the user's home.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tests.helpers import GOLDEN  # noqa: E402


@pytest.fixture
def golden():
    if not GOLDEN.is_dir():
        pytest.skip("reference vectors ../shared/golden are absent")
    return GOLDEN


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_CACHE", str(tmp_path / "pulse-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))

from tests.fakehub import fake_hub  # noqa: E402,F401  (fixture re-exported for every test module)
