"""The app served on 127.0.0.1 with a tiny random generator, for the gradio_client and browser tests.

``start`` writes a 32 px StyleGAN2 checkpoint in the rosinality layout (what ``PULSE_WEIGHTS``
would name), two 8 px targets - one the generator can make, one it cannot (a checkerboard) - and
launches the real app on a free port in this process. ``python -m tests.app_server`` serves it
until Ctrl-C, to look at the page by hand.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from pulse_core.imaging import save_png
from tests.helpers import checkerboard, generated_target, tiny_generator, write_upstream

TARGET_SIZE = 8  # the tiny generator makes 32 px faces: x4
TEST_ENV = {
    "PULSE_MAX_UPLOAD_MB": "1",  # small limits keep the oversized-upload tests fast
    "PULSE_FIT_SAMPLES": "20000",
    "PULSE_DEVICE": "cpu",
    "PULSE_MAX_STEPS": "5000",
    "PULSE_CONCURRENCY": "2",  # two searches at once share the one generator
    "PULSE_PLAIN": "1",  # float32 iterations on every CPU, so the expected verdicts hold everywhere
}


@dataclass
class Served:
    url: str
    demo: gr.Blocks
    handlers: object  # app.PulseApp
    folder: Path
    generated: Path  # an 8 px target rendered by the served generator: reachable
    unreachable: Path  # an 8 px checkerboard: no face downscales to it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_fixtures(folder: Path) -> tuple[Path, Path, Path]:
    """(checkpoint, generated target, checkerboard target) under ``folder``."""
    model = tiny_generator("stylegan2", resolution=32)
    checkpoint = write_upstream(model, "rosinality", folder / "weights")
    generated = folder / "generated_8.png"
    save_png(generated_target(model, TARGET_SIZE, seed=123), generated)
    board = checkerboard(TARGET_SIZE)
    unreachable = folder / "checkerboard_8.png"
    save_png(board, unreachable)
    return checkpoint, generated, unreachable


def start(folder: Path) -> Served:
    """Launch the app in this process with the tiny checkpoint as PULSE_WEIGHTS."""
    import app
    from pulse_app import AppSettings

    checkpoint, generated, unreachable = write_fixtures(folder)
    settings = AppSettings.from_env({**TEST_ENV, "PULSE_WEIGHTS": str(checkpoint)})
    handlers = app.PulseApp(settings)
    demo = app.build_demo(handlers)
    demo.launch(**app.launch_options(settings, server_name="127.0.0.1", server_port=free_port(),
                                     prevent_thread_lock=True, quiet=True))
    return Served(demo.local_url, demo, handlers, folder, generated, unreachable)


if __name__ == "__main__":
    import tempfile

    served = start(Path(tempfile.mkdtemp(prefix="pulse-app-test-")))
    print(f"serving {served.url} (generated target: {served.generated}, unreachable: {served.unreachable})")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        served.demo.close()
