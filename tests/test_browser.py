"""The page in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The app is served on 127.0.0.1 with a tiny random generator (``tests/app_server.py``). Screenshots
are written to ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from tests import app_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = app_server.start(tmp_path_factory.mktemp("browser"))
    yield server
    server.demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    page.wait_for_selector("#run")
    yield page
    context.close()


def shot(page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def status(page) -> str:
    return page.locator("#status textarea").input_value()


def wait_for_status(page, text: str) -> str:
    page.wait_for_function("([text]) => document.querySelector('#status textarea').value.includes(text)", arg=[text])
    return status(page)


def upload(page, path: Path) -> None:
    remove = page.locator('#input-image button[aria-label="Remove Image"]')
    if remove.count():
        remove.click()
    page.set_input_files("#input-image input[type=file]", str(path))
    page.wait_for_selector("#input-image img")


def set_steps(page, steps: int) -> None:
    box = page.locator("#steps input[type=number]")
    box.fill(str(steps))
    box.press("Enter")


def test_run_an_example_then_an_upload_and_read_the_results(page, served, tmp_path):
    notice = page.locator("#notice")
    assert "PULSE imagines faces of people who do not exist" in notice.inner_text()
    assert "cannot recover, enhance or identify" in notice.inner_text()

    # One click on an example loads it and runs the search.
    page.get_by_text("16 px face, x64").click()
    text = wait_for_status(page, "found within eps")
    assert "of 1 sample found within eps = 2.00e-3" in text and "16 px input, x2" in text

    # Then an upload the generator can explain: a found sample, its verification pair and curves.
    upload(page, served.generated)
    set_steps(page, 60)
    page.click("#run")
    text = wait_for_status(page, "Search ran 60 steps")
    assert text.startswith("1 of 1 sample found within eps = 2.00e-3."), text
    page.wait_for_selector("#samples img")
    page.wait_for_selector("#verification img")
    assert page.locator("#samples img").count() >= 1
    page.wait_for_selector("#losses svg .mark-line path")
    assert page.locator("#losses svg .mark-line path").count() >= 2  # the sample's curve and the eps line
    assert "generated_8_pulse" in page.locator("#download").inner_text()
    assert page.locator("#download a[download]").count() or page.locator("#download a").count()
    assert "Weights ready" in page.locator("#weights-status").inner_text()
    path = shot(page, "01-found")
    with Image.open(path) as image:
        assert image.size[0] == 1400 and image.size[1] > 1000


def test_an_unreachable_input_is_reported_as_not_found(page, served):
    upload(page, served.unreachable)
    set_steps(page, 30)
    page.click("#run")
    text = wait_for_status(page, "Search ran 30 steps")
    assert text.startswith("0 of 1 sample found within eps = 2.00e-3."), text
    assert "no image found that downscales to the input within eps = 2.00e-3; best " in text
    page.wait_for_selector("#samples img")
    assert "✗ not found" in page.locator("#samples").inner_text()
    shot(page, "02-not-found")


def test_stop_shows_what_was_found_so_far(page, served):
    upload(page, served.unreachable)
    set_steps(page, 3000)
    page.click("#run")
    page.wait_for_function("document.querySelector('#status textarea').value.includes('Searching: step')")
    page.click("#stop")
    text = wait_for_status(page, "stopped after")
    assert "0 of 1 sample found within eps = 2.00e-3 (stopped after" in text and "of 3000 steps)" in text
    page.wait_for_selector("#samples img")
    assert page.locator("#run").is_enabled()
    shot(page, "03-stopped")


def test_a_bad_input_shows_its_sentence_and_the_page_stays_usable(page, served, tmp_path):
    odd = tmp_path / "twelve.png"
    Image.new("RGB", (12, 12), "gray").save(odd)
    upload(page, odd)
    page.click("#run")
    toast = page.get_by_test_id("toast-text").filter(has_text="does not divide the generator's 32 px")
    toast.wait_for()
    assert "Use a 16, 8 or 4 px image, or choose “Photo: centre crop (no alignment)”" in toast.inner_text()
    page.wait_for_timeout(1000)  # the toast slides in
    shot(page, "04-bad-input", full_page=False)  # the message is a toast over the viewport
    page.wait_for_function("!document.querySelector('#run').disabled")
    upload(page, served.generated)
    set_steps(page, 5)
    page.click("#run")
    wait_for_status(page, "Search ran 5 steps")


def test_closing_the_page_deletes_its_files(browser, served):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(served.url)
    page.wait_for_selector("#run")
    upload(page, served.generated)
    set_steps(page, 3)
    page.click("#run")
    wait_for_status(page, "Search ran 3 steps")
    session = page.evaluate("window.__gradio_session_hash__")
    folder = served.handlers.sessions.path_of(session)
    assert any(folder.rglob("*.png")) and any(folder.rglob("results.json"))
    context.close()
    deadline = time.monotonic() + 20
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists(), "the session's files outlived the page"


def test_model_card_tab(page):
    page.get_by_role("tab", name="Model card").click()
    card = page.locator("#model-card")
    card.get_by_text("Ethical Considerations").first.wait_for()
    assert "Model card: PULSE with StyleGAN2 config-f, FFHQ 1024x1024" in card.inner_text()
    shot(page, "05-model-card")


def test_photo_mode_shows_the_faces_found(page):
    upload(page, ROOT / "examples" / "astronaut_aligned_256.png")
    page.get_by_text("Photo: find and align a face").click()
    page.wait_for_selector("#faces img")
    assert "1 face found." in page.inner_text("body")
    shot(page, "06-photo-faces")
