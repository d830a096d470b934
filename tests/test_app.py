"""The app: built at import without network, then served on 127.0.0.1 with a tiny random
generator (PULSE_WEIGHTS) and driven through gradio_client, plus its glue in ``pulse_app``."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pulse_app import AppSettings, GeneratorStore, UserInputError, WeightsError
from pulse_app.runner import (
    StopFlag,
    StreamItem,
    gpu_seconds,
    search_config,
    stream_search,
)
from pulse_app.sessions import SessionFiles
from pulse_core import SearchConfig
from pulse_core.results import SearchResult
from tests import app_server
from tests.helpers import tiny_generator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = app_server.start(tmp_path_factory.mktemp("app"))
    yield server
    server.demo.close()


@pytest.fixture(scope="module")
def client(served):
    return Client(served.url, verbose=False)


def upsample(client: Client, image: Path | None, **controls):
    controls.setdefault("steps", 5)
    return client.predict(image=handle_file(str(image)) if image else None, api_name="/upsample", **controls)


def app_error(client: Client, image: Path | None, **controls) -> str:
    with pytest.raises(AppError) as caught:
        upsample(client, image, **controls)
    return str(caught.value)


def zipped(bundle: str) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# -- import -----------------------------------------------------------------------------------

def test_import_builds_the_page_without_network_or_weights():
    probe = """
import socket, sys
attempts = []
def refuse(self, address, *a, **k):
    attempts.append(address)
    raise OSError("network is off in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
import pulse_app
assert "gradio" not in sys.modules, "pulse_app must not import gradio"
import app, gradio
assert isinstance(app.demo, gradio.Blocks)
store = app.HANDLERS.store
assert all(store.loaded(name) is None for name in app.SETTINGS.backbones())
assert "torch" in sys.modules and not attempts, attempts
names = {d.api_name for d in app.demo.fns.values() if d.api_visibility == "public"}
assert {"upsample", "resample_noise", "model_card"} <= names, names
share = [b for b in app.demo.blocks.values() if isinstance(b, gradio.DeepLinkButton)]
assert len(share) == 1 and share[0].visible is False  # shown on Spaces only
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr


def test_share_without_a_share_server_keeps_serving_locally(tmp_path):
    port = app_server.free_port()
    env = {**os.environ, "PULSE_WEIGHTS": str(tmp_path / "absent.pt"), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py", "--share", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "No public link could be opened" in line or "Running on public URL" in line for line in lines):
            time.sleep(0.2)
        output = "".join(lines)
        assert "No public link could be opened" in output or "Running on public URL" in output, output
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        image = EXAMPLES / "astronaut_16.png"
        with pytest.raises(AppError, match=r"The stylegan2-ffhq weights \(PULSE_WEIGHTS=.*absent.pt\) could not be "
                                           r"loaded: .*To use other weights, set PULSE_WEIGHTS"):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(image=handle_file(str(image)),
                                                                        api_name="/upsample")
        assert "PULSE imagines faces of people who do not exist" in httpx.get(
            f"http://127.0.0.1:{port}/config", timeout=10).text
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_server_side_rendering_only_with_node_24(tmp_path, monkeypatch):
    import app

    for version, expected in [("v24.2.0", True), ("v20.20.2", False)]:
        node = tmp_path / f"node-{version}"
        node.write_text(f"#!/bin/sh\necho {version}\n")
        node.chmod(0o755)
        monkeypatch.setenv("GRADIO_NODE_PATH", str(node))
        options = app.launch_options(AppSettings(max_upload_mb=3))
        assert options["ssr_mode"] is expected
        assert options["max_file_size"] == 6 * 2**20 and options["run_history"] is False


# -- the served app ---------------------------------------------------------------------------

def test_upsample_finds_a_face_the_generator_can_make(served, client):
    gallery, verification, plot, status, report, bundle = upsample(client, served.generated, steps=60, samples=2,
                                                                   seed=1)
    assert status.startswith("2 of 2 samples found within eps = 2.00e-3."), status
    assert [item["caption"].split(" ✓")[0] for item in gallery] == ["Sample 1", "Sample 2"]
    assert all("✓ found" in item["caption"] and "≤ eps 2.00e-3" in item["caption"] for item in gallery)
    for item in gallery:
        with Image.open(item["image"]) as image:
            assert image.format == "PNG" and image.size == (32, 32)
    with Image.open(verification[0]["image"]) as pair:  # input | gap | DS(sample), 8 px enlarged x32
        assert pair.format == "PNG" and pair.size[1] == 256 and pair.size[0] > 512
        pixels = np.asarray(pair)
        assert (pixels[:32, :32] == pixels[0, 0]).all()  # nearest: one input pixel is one flat block
    entry = report["inputs"][0]
    # The CLI's results.json fields (pulse_core.cli.upsample), then one entry per input.
    assert set(report) == {"pulse_version", "config", "backbone", "revision", "weights", "device", "align",
                           "degrade", "errors", "inputs"}
    assert report["backbone"] == "stylegan2-ffhq" and report["config"]["steps"] == 60
    assert report["weights"].endswith("stylegan2-ffhq-config-f.pt") and report["device"] == "cpu"
    assert report["align"] is None and report["degrade"] is None and report["errors"] == []
    assert {"input", "status", "found", "samples_total", "summary", "stopped", "input_size", "factor", "timings",
            "samples", "preparation"} <= set(entry)
    assert entry["input"] == "generated_8.png" and entry["found"] == 2 and entry["factor"] == 4
    assert entry["preparation"]["mode"] == "lr" and entry["stopped"] is False
    assert [s["success"] for s in entry["samples"]] == [True, True]
    assert all(s["downscaling_loss"] <= 2e-3 for s in entry["samples"])
    files = zipped(bundle)
    assert json.loads(files["results.json"]) == report
    assert {"generated_8_1.png", "generated_8_2_downscaled.png", "generated_8_input.png",
            "generated_8_1_verification.png"} <= set(files)
    assert {row[2] for row in plot["data"]} == {"sample 1", "sample 2", "eps"}


def test_progress_and_previews_stream_while_searching(served, client):
    # Enough steps that polling the job sees the progress bar at least once, even on a fast machine.
    job = client.submit(image=handle_file(str(served.generated)), steps=400, samples=2, api_name="/upsample")
    bars = []
    while not job.done():
        progress = job.status().progress_data
        if progress:
            bars.append((progress[0].index, progress[0].length, progress[0].unit))
        time.sleep(0.01)
    job.result()
    assert bars and all(length == 400 and unit == "steps" for _, length, unit in bars)  # gr.Progress, per step
    streamed = job.outputs()[:-1]  # every update the search yielded before its result
    previews = [out[0] for out in streamed if isinstance(out[0], list) and out[0]]
    assert len(previews) >= 2, "preview images were not streamed"
    assert all(len(p) == 2 and "at step" in p[0]["caption"] for p in previews)
    steps = [int(re.match(r"Searching: step (\d+) of 400", out[3]).group(1))
             for out in streamed if isinstance(out[3], str) and out[3].startswith("Searching: step")]
    assert len(set(steps)) >= 2 and steps == sorted(steps)  # the status moves with the search


def test_upsample_reports_failure_for_an_unreachable_input(served, client):
    gallery, _, _, status, report, bundle = upsample(client, served.unreachable, steps=20, samples=2)
    assert status.startswith("0 of 2 samples found within eps = 2.00e-3."), status
    assert "sample 1 (seed 0): no image found that downscales to the input within eps = 2.00e-3; best " in status
    assert all("✗ not found: best loss" in item["caption"] and "> eps" in item["caption"] for item in gallery)
    assert [s["success"] for s in report["inputs"][0]["samples"]] == [False, False]
    assert {"checkerboard_8_1_FAILED_best-attempt.png", "results.json"} <= set(zipped(bundle))


def test_resample_noise_varies_the_faces_just_found(served):
    session = Client(served.url, verbose=False)
    with pytest.raises(AppError, match="There are no found faces to vary yet: run a search first"):
        session.predict(noise_seed=5, resample_steps=3, api_name="/resample_noise")
    first = upsample(session, served.generated, steps=40, samples=2, seed=1)
    gallery, _, _, status, report, bundle = session.predict(noise_seed=5, resample_steps=10,
                                                            api_name="/resample_noise")
    assert "Resampling ran 10 steps" in status and len(gallery) == 2
    assert json.loads(zipped(bundle)["results.json"]) == report
    entry = report["inputs"][0]
    assert entry["preparation"]["resample_noise"] == {"noise_seed": 5, "steps": 10}
    assert [s["seed"] for s in entry["samples"]] == [5, 6]
    assert gallery[0]["image"] != first[0][0]["image"]


def test_model_card_endpoint(client):
    html = client.predict("stylegan2-ffhq", api_name="/model_card")
    assert html.lstrip().startswith("<article") and "StyleGAN2 config-f" in html
    assert "Ethical Considerations" in html and "<script" not in html


@pytest.mark.parametrize("make, expected", [
    ("none", "No image was given: upload a photo or a low-resolution face"),
    ("text", "The uploaded image: this is a text file, not an image"),
    ("truncated", "The uploaded image: the file is truncated or corrupt"),
    ("bomb", "over the 40.0 megapixel limit (a guard against decompression bombs)"),
    ("heavy", "MiB, over the 1.0 MiB limit; save it at a smaller size or higher compression"),
    ("twelve", "is 12x12 px, which does not divide the generator's 32 px by a power of two"),
    ("oblong", "is 16x8 px, but an aligned low-resolution face must be square. Choose “Photo: find and align"),
])
def test_bad_inputs_get_a_sentence(served, client, tmp_path, make, expected):
    path = tmp_path / f"{make}.png"
    if make == "text":
        path.write_text("name,score\nalice,3\n")
    elif make == "truncated":
        data = served.generated.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif make == "bomb":  # a valid PNG header declaring 8000x8000 pixels, and almost no data
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    elif make == "heavy":  # between the app's 1 MiB limit and the server's 2 MiB cap
        noise = np.random.default_rng(0).integers(0, 256, (660, 660, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path, compress_level=0)
    elif make in ("twelve", "oblong"):
        Image.new("RGB", (12, 12) if make == "twelve" else (16, 8), "gray").save(path)
    message = app_error(client, None if make == "none" else path)
    assert expected in message, message
    if make == "twelve":
        assert "Use a 16, 8 or 4 px image, or choose “Photo: centre crop (no alignment)”" in message
    assert "/tmp" not in message and str(tmp_path) not in message  # never the upload's path


def test_uploads_over_the_server_cap_are_refused(served, client, tmp_path):
    path = tmp_path / "huge.bin"
    path.write_bytes(os.urandom(2 * 2**20 + 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size of 2097152 bytes"):
        upsample(client, path)  # gradio_client checks the cap the server announces
    reply = httpx.post(f"{served.url}gradio_api/upload", files={"files": ("huge.png", path.read_bytes())},
                       timeout=30)
    assert reply.status_code == 413 and "maximum allowed size" in reply.text


def _exif_rotated(path: Path) -> np.ndarray:
    """An 8x8 JPEG stored upside down with EXIF orientation 3; returns how it must look."""
    upright = np.zeros((8, 8, 3), np.uint8)
    upright[:4] = 255  # white top half
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(upright[::-1, ::-1].copy()).save(path, exif=exif, quality=100)
    return upright


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "P", "EXIF"])
def test_unusual_images_are_handled(client, tmp_path, mode):
    path = tmp_path / f"face-{mode.replace(';', '')}.png"
    if mode == "RGBA":  # fully transparent left half: composited on white
        pixels = np.zeros((8, 8, 4), np.uint8)
        pixels[:, 4:] = (10, 20, 30, 255)
        Image.fromarray(pixels, "RGBA").save(path)
        expected = np.where(np.arange(8)[None, :, None] < 4, 255, np.array([10, 20, 30])).astype(np.uint8)
        expected = np.broadcast_to(expected, (8, 8, 3))
    elif mode == "L":
        Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(path)
        expected = np.full((8, 8, 3), 77, np.uint8)
    elif mode == "I;16":
        Image.fromarray(np.full((8, 8), 0x8000, np.uint16)).save(path)
        expected = np.full((8, 8, 3), 128, np.uint8)
    elif mode == "P":
        Image.fromarray(np.full((8, 8, 3), (200, 40, 90), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
        expected = np.full((8, 8, 3), (200, 40, 90), np.uint8)
    else:
        path = path.with_suffix(".jpg")
        expected = _exif_rotated(path)
    *_, status, _, bundle = upsample(client, path, steps=2)
    assert "of 1 sample found" in status, status
    stem = path.stem
    with Image.open(io.BytesIO(zipped(bundle)[f"{stem}_input.png"])) as searched:
        assert searched.mode == "RGB" and searched.size == (8, 8)
        assert np.abs(np.asarray(searched).astype(int) - expected.astype(int)).max() <= 6


def test_photo_inputs_are_aligned_or_cropped(client, tmp_path):
    photo = EXAMPLES / "astronaut_aligned_256.png"
    *_, report, _ = upsample(client, photo, input_kind="align", photo_size=16, steps=2)
    entry = report["inputs"][0]
    assert entry["preparation"]["method"] == "aligned" and entry["preparation"]["face"]["number"] == 1
    assert report["align"] == 16 and entry["preparation"]["source_size"] == [256, 256]
    assert entry["input_size"] == 16 and entry["factor"] == 2
    message = app_error(client, photo, input_kind="align", photo_size=16, face_number=2)
    assert "Face 2 was asked for, but 1 face was found in the uploaded image; choose a number from 1 to 1" in message
    message = app_error(client, photo, input_kind="align", photo_size=32)
    assert "The generator makes 32 px faces, so a photo cannot be downscaled to 32 px for it; choose 16 px." in message
    blank = tmp_path / "wall.png"
    Image.new("RGB", (240, 160), (120, 130, 140)).save(blank)
    message = app_error(client, blank, input_kind="align", photo_size=16)
    assert message.startswith("No face was found in the uploaded image") and "“Photo: centre crop" in message
    *_, report, _ = upsample(client, blank, input_kind="crop", photo_size=16, steps=2)
    assert report["inputs"][0]["preparation"]["method"] == "center-crop"


def test_settings_and_degradations_are_checked(served, client):
    assert "Invalid setting: eps must be > 0" in app_error(client, served.generated, eps=0)
    assert "at least one downscaling loss weight" in app_error(client, served.generated, l2_weight=0)
    assert "out of range: the generator has 7 noise maps" in app_error(client, served.generated,
                                                                       zero_noise_layers=[9])
    assert "Steps must be from 1 to 5000, got 5001." in app_error(client, served.generated, steps=5001)
    assert "Backbone 'biggan' has no weights here; choose one of stylegan2-ffhq." in app_error(
        client, served.generated, backbone="biggan")
    assert "Unknown kind of input 'sketch'" in app_error(client, served.generated, input_kind="sketch")
    assert "Face number must be a whole number, got 'two'." in app_error(client, served.generated,
                                                                         face_number="two")
    message = app_error(client, served.generated, degradation="motion_blur:100")
    assert message.startswith("Motion blur is applied before downscaling, so it needs the full photo")
    *_, report, _ = upsample(client, served.generated, degradation="gaussian:25")
    assert report["degrade"] == "gaussian:25" and report["inputs"][0]["preparation"]["degradation"] == {
        "kind": "gaussian", "std": 25.0, "length": None, "angle": None, "density": None}


def test_two_clients_at_once_both_finish_with_the_same_result(served):
    def run(_: int) -> dict:
        return upsample(Client(served.url, verbose=False), served.generated, steps=40, samples=2, seed=3)[4]

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(run, range(2)))
    losses = [[s["downscaling_loss"] for s in r["inputs"][0]["samples"]] for r in reports]
    assert losses[0] == losses[1]  # nothing shared between concurrent requests changes a result


def _search_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pulse-search"]


def test_a_cancelled_job_stops_its_search(served, client):
    job = client.submit(image=handle_file(str(served.unreachable)), steps=5000, samples=4, api_name="/upsample")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = job.status().progress_data
        if progress and (progress[0].index or 0) >= 5:
            break
        time.sleep(0.05)
    assert _search_threads(), "the search should be running"
    job.cancel()
    deadline = time.monotonic() + 5  # a step takes milliseconds; the whole search would take minutes
    while _search_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _search_threads(), "the search kept running after its job was cancelled"


def test_nothing_about_uploads_is_logged(served, client, tmp_path, caplog, capfd):
    secret = tmp_path / "secret-face-4821.png"
    Image.open(served.generated).save(secret)
    with caplog.at_level(logging.DEBUG):
        upsample(client, secret)
        with pytest.raises(AppError):
            upsample(client, secret, input_kind="align", photo_size=16)
    out, err = capfd.readouterr()
    # The server runs in this process: leave out only the client's own HTTP logs, which name the
    # files it downloads from the server.
    server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_logs and any(r.name.startswith("pulse_core") for r in caplog.records)
    for text in (*server_logs, out, err):
        assert "secret-face-4821" not in text


# -- pulse_app ----------------------------------------------------------------------------------

def test_settings_from_the_environment(tmp_path):
    settings = AppSettings.from_env({"PULSE_WEIGHTS": "owner/repo:g.pt", "PULSE_REVISION": "abc123",
                                     "PULSE_DEVICE": "cpu", "PULSE_MAX_UPLOAD_MB": "2.5"})
    assert settings.source_for("stylegan2-ffhq") == ("owner/repo:g.pt", "abc123")
    assert settings.backbones() == ("stylegan2-ffhq",) and settings.max_upload_bytes == int(2.5 * 2**20)
    assert settings.server_max_file_size == 2 * settings.max_upload_bytes and settings.plain is False
    assert AppSettings.from_env({"PULSE_PLAIN": "1", "PULSE_DEVICE": "cpu"}).plain is True
    both = AppSettings.from_env({"PULSE_WEIGHTS": str(tmp_path), "PULSE_BACKBONE": "stylegan-ffhq",
                                 "PULSE_DEVICE": "cpu"})
    assert both.backbones() == ("stylegan2-ffhq", "stylegan-ffhq")
    assert both.source_for("stylegan2-ffhq") == (None, None)
    with pytest.raises(ValueError, match="PULSE_MAX_STEPS must be an integer, got 'many'"):
        AppSettings.from_env({"PULSE_MAX_STEPS": "many", "PULSE_DEVICE": "cpu"})
    with pytest.raises(ValueError, match="PULSE_BACKBONE must be one of"):
        AppSettings.from_env({"PULSE_BACKBONE": "biggan", "PULSE_DEVICE": "cpu"})


def test_missing_weights_give_a_sentence_and_what_to_set(tmp_path):
    store = GeneratorStore(AppSettings(weights=str(tmp_path / "nope.pt")))
    assert "does not exist" in store.describe("stylegan2-ffhq")
    with pytest.raises(WeightsError, match="could not be loaded: .*set PULSE_WEIGHTS to a local checkpoint"):
        store.get("stylegan2-ffhq")
    assert "PULSE_WEIGHTS" in store.describe("stylegan2-ffhq") and store.loaded("stylegan2-ffhq") is None


def test_weights_load_once_for_concurrent_requests(tmp_path, monkeypatch):
    from pulse_app import models

    calls = []

    def slow_load(*args, **kwargs):
        calls.append(args)
        time.sleep(0.3)
        return tiny_generator("stylegan2", resolution=32, fit_samples=2000)

    monkeypatch.setattr(models, "load_generator", slow_load)
    store = GeneratorStore(AppSettings(weights=str(tmp_path)))
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: store.get("stylegan2-ffhq"), range(4)))
    assert len(calls) == 1 and all(g is loaded[0] for g in loaded)


def test_search_config_from_controls():
    controls = {"seed": 2, "samples": 3, "steps": 50.0, "eps": 1e-3, "noise_mode": "fixed", "trainable_noise_layers": 0,
                "learning_rate": 0.2, "schedule": "fixed", "optimizer": "sgdm", "l2_weight": 10, "l1_weight": 1,
                "geocross_weight": 0, "tile_latent": True, "zero_noise_layers": [3, 1], "max_steps": 100}
    config = search_config(**controls)
    assert config == SearchConfig(steps=50, learning_rate=0.2, eps=1e-3, samples=3, seed=2, tile_latent=True,
                                  noise_mode="fixed", trainable_noise_layers=0, zero_noise_layers=(1, 3),
                                  loss=config.loss, optimizer="sgdm", schedule="fixed", preview_every=5)
    assert search_config(**{**controls, "zero_noise_layers": []}).zero_noise_layers is None
    for change, message in [({"steps": 101}, "Steps must be from 1 to 100, got 101"),
                            ({"samples": 9}, "^Samples must be from 1 to 8, got 9.$"),
                            ({"seed": 1.5}, "^Seed must be a whole number, got 1.5.$"),
                            ({"learning_rate": None}, "^The learning rate must be a number, got None.$"),
                            ({"zero_noise_layers": "17"}, "must be a list of layer numbers"),
                            ({"schedule": "cosine"}, "Invalid setting: schedule must be one of")]:
        with pytest.raises(UserInputError, match=message):
            search_config(**{**controls, **change})
    assert 30 < gpu_seconds(100, 1) < gpu_seconds(100, 8) <= 300


def test_stream_stops_on_its_flag_and_when_closed(tmp_path):
    generator = tiny_generator("stylegan2", resolution=32, fit_samples=2000)
    target = torch.rand(3, 8, 8)
    flag = StopFlag(tmp_path / "stop")
    config = SearchConfig(steps=300, samples=2, preview_every=50)
    items = []
    for item in stream_search(generator, target, config, stop=flag, interval=0.0):
        items.append(item)
        if isinstance(item, StreamItem) and item.info.step >= 10:
            flag.set()
    result = items[-1]
    assert isinstance(result, SearchResult) and result.stopped and 10 < result.steps_run < 300
    assert "(stopped after" in result.summary and len(result.samples) == 2
    shown = [i for i in items[:-1] if i.info.preview is not None]
    assert shown and shown[0].info.preview.shape == (2, 3, 32, 32)
    assert len(items[-2].histories) == 2 and len(items[-2].histories[0]) == items[-2].info.step + 1
    stream = stream_search(generator, target, SearchConfig(steps=5000), interval=0.0)
    next(stream)
    stream.close()  # what gradio does when a request is cancelled
    assert not _search_threads()


def test_session_files_are_deleted(tmp_path):
    sessions = SessionFiles(ttl=3600, root=tmp_path)
    run = sessions.new_run("session-a")
    (run / "sample.png").write_bytes(b"png")
    other = sessions.new_run("session-b")
    assert run.parent != other.parent and "session-a" not in str(run)
    sessions.delete("session-a")
    assert not run.exists() and other.exists()
    old = time.time() - 7200
    for path in [other, other.parent]:
        os.utime(path, (old, old))
    sessions.sweep()
    assert not other.parent.exists()
