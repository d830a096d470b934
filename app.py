"""PULSE in a web page (a Hugging Face Space): layout and the adapters between Gradio and
``pulse_app``. ``demo`` is built at import without loading or downloading any weights; the
generator loads on the first request (``python app.py`` also warms it up in the background).

Named endpoints for ``gradio_client``: ``/upsample``, ``/resample_noise`` and ``/model_card``.
Run ``python app.py`` to serve on localhost, ``python app.py --share`` for a public link too.
"""

from __future__ import annotations

try:  # ZeroGPU: `spaces` must be imported before torch touches CUDA.
    import spaces
except ImportError:
    spaces = None

import argparse
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import torch

from pulse_app import AppSettings, GeneratorStore, UserInputError, WeightsError
from pulse_app.inputs import (
    DEGRADATIONS,
    INPUT_KINDS,
    PHOTO_SIZES,
    SearchInput,
    face_previews,
    prepare,
    read_upload,
)
from pulse_app.runner import (
    MAX_SAMPLES,
    StopFlag,
    StreamItem,
    gpu_seconds,
    search_config,
    stream_search,
    whole_number,
)
from pulse_app.sessions import SessionFiles
from pulse_app.views import loss_frame, preview_items, progress_text, write_outputs
from pulse_core.cards import CardContext, Metrics, load_metrics, render_model_card
from pulse_core.config import NOISE_MODES, OPTIMIZERS, SCHEDULES, SearchConfig
from pulse_core.imaging import to_uint8_array
from pulse_core.results import SearchResult
from pulse_core.runtime import configure_process
from pulse_core.search import InputError
from pulse_core.weights.registry import DEFAULT_BACKBONE, get_backbone

logger = logging.getLogger("pulse_app")

EXAMPLES = Path(__file__).resolve().parent / "examples"
NOTICE = (
    "**PULSE imagines faces of people who do not exist.** It searches a face generator for new, realistic faces "
    "that *downscale* to your low-resolution input. It cannot recover, enhance or identify the person in the input: "
    "every face shown is invented, and many different invented faces fit the same input. The outputs inherit the "
    "biases of the generator and of its training data (FFHQ): some groups of people are rendered less faithfully "
    "than others (see the *Model card* tab). Uploads and results are not logged; a session's files are deleted "
    "when it ends."
)
CSS = """
.pulse-notice {border-left: 4px solid #d97706; padding: 0.4em 0.9em; background: rgba(217, 119, 6, 0.08);}
#verification img, #faces img, #input-image img {image-rendering: pixelated;}
#input-image img {width: 100%; height: 100%; object-fit: contain;}
"""
MAX_NOISE_LAYERS = 18  # StyleGAN (v1) at 1024 px has 18 noise maps, StyleGAN2 17
CURVE_COLORS = {f"sample {k + 1}": color for k, color in enumerate(
    ("#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563"))} | {"eps": "#dc2626"}


def upload_name(payload: dict | None) -> str:
    """The upload's own file name (for the report and the output files), never its server path."""
    if not isinstance(payload, dict):
        return "input.png"
    return Path(payload.get("orig_name") or payload.get("path") or "input.png").name


def upload_path(payload: dict | None) -> str | None:
    """The server path of an uploaded image, from the raw payload of ``gr.Image``.

    The search and face events run with ``preprocess=False``: ``gr.Image`` would open the file with
    Pillow before the handler runs, so a corrupt file or a decompression bomb would fail inside
    Gradio with no useful message (and ``type="pil"`` would hide EXIF rotation and 16-bit data).
    Gradio still checks that the file was uploaded to its cache; ``decode_image`` reads the bytes.
    """
    return payload.get("path") if isinstance(payload, dict) else None


@dataclass(frozen=True, eq=False)
class FoundFaces:
    """The last search of a session, kept in its ``gr.State`` for "Resample noise"."""

    result: SearchResult
    target: SearchInput
    backbone: str


@contextmanager
def user_errors() -> Iterator[None]:
    """Show the sentence of an input or weights problem to the person (not a traceback in the log)."""
    try:
        yield
    except (UserInputError, WeightsError, InputError) as error:
        # Shown until closed (a sentence to act on), and not printed: it may describe the upload.
        raise gr.Error(str(error), duration=None, print_exception=False) from None


def _gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU`` where the package is installed (a no-op off ZeroGPU), else nothing."""
    return (lambda fn: fn) if spaces is None else spaces.GPU(duration=duration)


def _device_seconds(backbone: str, lr_image: torch.Tensor, config: SearchConfig, stop_path: str,
                    found: SearchResult | None, noise_seed: int, resample_steps: int) -> int:
    """ZeroGPU seconds to reserve, from the steps and samples asked for (same arguments as the search)."""
    return gpu_seconds(resample_steps if found is not None else config.steps, config.samples)


class PulseApp:
    """The handlers behind the page. Holds only read-only things: settings, the generator
    store (loads once, under a lock), the session folders and the model card's metrics."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.store = GeneratorStore(settings)
        self.sessions = SessionFiles(settings.session_ttl)
        self.metrics = self._metrics(settings.metrics)
        self.stream_on_device = _gpu(_device_seconds)(self._stream_on_device)

    @staticmethod
    def _metrics(path: str | None) -> Metrics | None:
        if path is None:
            return None
        try:
            return load_metrics(path)
        except (OSError, ValueError) as error:
            logger.warning("PULSE_METRICS ignored: %s", error)
            return None

    def _stream_on_device(self, backbone: str, lr_image: torch.Tensor, config: SearchConfig, stop_path: str,
                          found: SearchResult | None, noise_seed: int,
                          resample_steps: int) -> Iterator[StreamItem | SearchResult]:
        """The search itself; on ZeroGPU this runs in the GPU worker (arguments are pickled)."""
        loaded = self.store.get(backbone)
        yield from stream_search(loaded.generator, lr_image, config, stop=StopFlag(stop_path), found=found,
                                 noise_seed=noise_seed, resample_steps=resample_steps, runtime=loaded.runtime)

    def warm_up(self) -> None:
        try:
            self.store.get(self.settings.backbones()[0])
        except WeightsError:
            pass  # logged by the store; the page says it

    # -- run / stop ------------------------------------------------------------------------

    def begin(self, request: gr.Request) -> tuple:
        run = self.sessions.new_run(request.session_hash)
        return gr.Button(interactive=False), gr.Button(interactive=True), str(run)

    def end(self, backbone: str) -> tuple:
        """Re-enable Run; the banner and the card now name the weights that ran."""
        return (gr.Button(interactive=True), gr.Button(interactive=False), self.store.describe(backbone),
                self.model_card(backbone))

    def stop(self, run: str | None) -> None:
        if run and Path(run).resolve().is_relative_to(self.sessions.root):
            StopFlag(Path(run) / "stop").set()
            gr.Info("Stopping: the search ends after its current step and shows what it found so far.")

    def _run_folder(self, run: str | None, request: gr.Request) -> Path:
        if run and Path(run).is_dir() and Path(run).resolve().is_relative_to(self.sessions.root):
            return Path(run)
        return self.sessions.new_run(request.session_hash)  # API calls have no Run button

    def _stream(self, target: SearchInput, backbone: str, config: SearchConfig, folder: Path,
                progress: gr.Progress, *, found: SearchResult | None = None, noise_seed: int = 0, resample_steps: int = 0,
                what: str = "Searching") -> Iterator[tuple | SearchResult]:
        """Yield the page's updates while searching, then the result itself."""
        stop = folder / "stop"
        stop.unlink(missing_ok=True)
        # The plot is cleared, not emptied: its colour scale is built from the first data it shows.
        yield (None, None, None, f"{what}…", None, None)
        items = self.stream_on_device(backbone, target.lr_image, config, str(stop), found, noise_seed, resample_steps)
        for item in items:
            if isinstance(item, SearchResult):
                yield item
                return
            progress((item.info.step + 1, item.info.steps), desc=f"{what}: step", unit="steps")
            gallery = preview_items(item.info) if item.info.preview is not None else gr.skip()
            yield (gallery, gr.skip(), loss_frame(item.histories, item.info.eps), progress_text(item.info, what=what),
                   gr.skip(), gr.skip())

    # -- endpoints ---------------------------------------------------------------------------

    def upsample(self, image: dict | None, input_kind: str, photo_size: int, face_number: float, backbone: str,
                 seed: float, samples: float, steps: float, eps: float, noise_mode: str,
                 trainable_noise_layers: float, learning_rate: float, schedule: str, optimizer: str,
                 l2_weight: float, l1_weight: float, geocross_weight: float, tile_latent: bool,
                 zero_noise_layers: list[int], degradation: str, run: str | None, request: gr.Request,
                 progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:  # noqa: B008 (gradio's way)
        """Search for faces that downscale to the image; stream previews, then the samples and report."""
        with user_errors():
            config = search_config(seed=seed, samples=samples, steps=steps, eps=eps, noise_mode=noise_mode,
                                   trainable_noise_layers=trainable_noise_layers, learning_rate=learning_rate,
                                   schedule=schedule, optimizer=optimizer, l2_weight=l2_weight, l1_weight=l1_weight,
                                   geocross_weight=geocross_weight, tile_latent=tile_latent,
                                   zero_noise_layers=zero_noise_layers, max_steps=self.settings.max_steps)
            path = upload_path(image)
            picture = read_upload(path, max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_pixels)
            if self.store.loaded(backbone) is None:
                yield (gr.skip(),) * 3 + ("Loading the generator (the first run downloads its weights)…",) + (
                    gr.skip(),) * 3
            generator = self.store.get(backbone).generator
            try:
                config.zeroed_layers(generator.num_noise)
            except ValueError as error:
                raise UserInputError(f"Invalid setting: {error}.") from None
            target = prepare(picture, kind=input_kind, size=whole_number("Photo size", photo_size, 1),
                             face_number=whole_number("Face number", face_number, 1),
                             resolution=generator.resolution, name=upload_name(image), degradation=degradation,
                             seed=config.seed)
            folder = self._run_folder(run, request)
            for update in self._stream(target, backbone, config, folder, progress):
                if isinstance(update, SearchResult):
                    out = write_outputs(update, target, folder)
                    yield (out.gallery, out.verification, out.losses, out.status, out.report, str(out.bundle),
                           FoundFaces(update, target, backbone))
                else:
                    yield (*update, gr.skip())

    def resample_noise(self, noise_seed: float, resample_steps: float, found: FoundFaces | None, run: str | None,
                       request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:  # noqa: B008 (gradio's way)
        """Keep the faces the last search found, draw new noise and refine: fine-level variations (paper 4.4)."""
        with user_errors():
            if found is None:
                raise UserInputError("There are no found faces to vary yet: run a search first, then “Resample "
                                     "noise” draws new noise for the faces it found.")
            seed = whole_number("Noise seed", noise_seed, 0)
            steps = whole_number("Resample steps", resample_steps, 1, self.settings.max_steps)
            folder = self._run_folder(run, request)
            config = found.result.config
            for update in self._stream(found.target, found.backbone, config, folder, progress, found=found.result,
                                       noise_seed=seed, resample_steps=steps, what="Resampling noise"):
                if isinstance(update, SearchResult):
                    extra = {"resample_noise": {"noise_seed": seed, "steps": steps}}
                    out = write_outputs(update, found.target, folder, extra=extra, what="Resampling")
                    yield (out.gallery, out.verification, out.losses, out.status, out.report, str(out.bundle))
                else:
                    yield update

    def model_card(self, backbone: str) -> str:
        """The model card of PULSE with this backbone, as an HTML fragment."""
        source, revision = self.store.card_source(backbone)
        metrics = self.metrics if self.metrics is not None and self.metrics.backbone == backbone else None
        context = CardContext(get_backbone(backbone), revision=revision, source=source, metrics=metrics)
        return render_model_card(context, fmt="html")

    # -- page helpers ------------------------------------------------------------------------

    def weights_banner(self, backbone: str) -> str:
        return self.store.describe(backbone)

    def show_kind(self, input_kind: str) -> tuple:
        photo = input_kind in ("align", "crop")
        return gr.Radio(visible=photo), gr.Number(visible=input_kind == "align")

    def find_faces(self, image: dict | None, input_kind: str) -> tuple:
        """Preview the faces of a photo in "align" mode, numbered as the Face control counts them."""
        path = upload_path(image)
        if not path or input_kind != "align":
            return gr.Gallery(value=None, visible=False), ""
        try:
            picture = read_upload(path, max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_pixels)
        except UserInputError as error:
            return gr.Gallery(value=None, visible=False), str(error)
        faces = face_previews(picture)
        if not faces:
            return gr.Gallery(value=None, visible=False), (
                f"No face was found in this photo. Choose “{INPUT_KINDS['crop']}” to use its central square.")
        items = [(to_uint8_array(face), label) for face, label in faces]
        words = "1 face found." if len(faces) == 1 else f"{len(faces)} faces found: click one to use it."
        return gr.Gallery(value=items, visible=True), words

    def pick_face(self, event: gr.SelectData) -> int:
        return event.index + 1

    def end_session(self, request: gr.Request) -> None:
        self.sessions.delete(request.session_hash)


def _examples() -> list[tuple[list, str]]:
    """(row, label) of the example files that exist: [image, kind, photo size]."""
    rows = [("astronaut_16.png", "lr", "16 px face, x64"), ("astronaut_32.png", "lr", "32 px face, x32"),
            ("astronaut_64.png", "lr", "64 px face, x16"), ("astronaut_32_gaussian25.png", "lr", "32 px, noisy"),
            ("astronaut_32_motion_blur.png", "lr", "32 px, motion blur"),
            ("astronaut_aligned_256.png", "align", "photo: align, 32 px")]
    return [([str(EXAMPLES / name), kind, 32], label) for name, kind, label in rows if (EXAMPLES / name).is_file()]


def build_demo(handlers: PulseApp) -> gr.Blocks:
    """The page wired to ``handlers``. Nothing is loaded here: the generator loads on the first request."""
    settings = handlers.settings
    defaults = get_backbone(DEFAULT_BACKBONE).search_defaults
    backbones = [(get_backbone(name).title, name) for name in settings.backbones()]
    search = {"concurrency_limit": settings.concurrency, "concurrency_id": "search"}
    with gr.Blocks(title="PULSE: Photo Upsampling via Latent Space Exploration",
                   delete_cache=(600, settings.session_ttl)) as demo:
        gr.Markdown("# PULSE: Photo Upsampling via Latent Space Exploration\n"
                    "Menon, Damian, Hu, Ravi, Rudin (CVPR 2020): a search in a face generator's latent space for "
                    "high-resolution faces that downscale to a low-resolution input.")
        gr.Markdown(NOTICE, elem_classes="pulse-notice", elem_id="notice")
        banner = gr.Markdown(elem_id="weights-status")
        run = gr.State(None)  # this session's current run folder (holds the Stop flag)
        found = gr.State(None, time_to_live=settings.session_ttl)  # FoundFaces of the last search
        with gr.Tab("Upsample"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    image = gr.Image(label="Input image", type="filepath", image_mode=None, height=260,
                                     sources=["upload", "clipboard", "webcam"], elem_id="input-image")
                    kind = gr.Radio([(label, key) for key, label in INPUT_KINDS.items()], value="lr",
                                    label="What is this image?")
                    photo_size = gr.Radio(list(PHOTO_SIZES), value=32, label="Downscale the photo to (px)",
                                          visible=False)
                    face_number = gr.Number(1, precision=0, minimum=1, label="Face to use (1 = the largest)",
                                            visible=False)
                    input_info = gr.Markdown()
                    faces = gr.Gallery(label="Faces found", visible=False, columns=4, height=170, format="png",
                                       allow_preview=False, object_fit="contain", fit_columns=False,
                                       elem_id="faces")
                    backbone = gr.Dropdown(backbones, value=backbones[0][1], label="Backbone (face generator)")
                    with gr.Row():
                        seed = gr.Number(defaults.seed, precision=0, minimum=0, label="Seed")
                        samples = gr.Slider(1, MAX_SAMPLES, value=defaults.samples, step=1, precision=0,
                                            label="Samples", elem_id="samples-count")
                    with gr.Row():
                        steps = gr.Slider(1, settings.max_steps, value=defaults.steps, step=1, precision=0,
                                          label="Steps", elem_id="steps")
                        eps = gr.Number(defaults.eps, label="eps (success: downscaling loss ≤ eps)")
                    with gr.Row():
                        noise_mode = gr.Radio(list(NOISE_MODES), value=defaults.noise_mode, label="Noise")
                        trainable = gr.Slider(0, MAX_NOISE_LAYERS, value=defaults.trainable_noise_layers, step=1,
                                              precision=0, label="Trainable noise layers")
                    with gr.Accordion("Advanced", open=False):
                        with gr.Row():
                            learning_rate = gr.Number(defaults.learning_rate, label="Learning rate")
                            schedule = gr.Dropdown(list(SCHEDULES), value=defaults.schedule, label="Schedule")
                            optimizer = gr.Dropdown(list(OPTIMIZERS), value=defaults.optimizer, label="Optimizer")
                        with gr.Row():
                            l2 = gr.Number(defaults.loss.l2, label="L2 weight")
                            l1 = gr.Number(defaults.loss.l1, label="L1 weight")
                            geocross = gr.Number(defaults.loss.geocross, label="Geocross weight")
                        tile = gr.Checkbox(defaults.tile_latent, label="Tile latent (one latent row for every layer)")
                        zeroed = gr.CheckboxGroup(list(range(MAX_NOISE_LAYERS)), value=[],
                                                  label="Noise layers held at zero",
                                                  info="None ticked: only the last one (the paper's default).")
                        degradation = gr.Dropdown([(label, key) for key, label in DEGRADATIONS.items()],
                                                  value="none", label="Degrade the input first (robustness test)")
                    with gr.Row():
                        run_button = gr.Button("Run", variant="primary", elem_id="run")
                        stop_button = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop")
                    examples = gr.Examples([row for row, _ in _examples()], inputs=[image, kind, photo_size],
                                           example_labels=[label for _, label in _examples()], preload=False,
                                           label="Examples (public-domain NASA photo; click to run)")
                with gr.Column(scale=3, min_width=360):
                    status = gr.Textbox(label="Status", lines=3, max_lines=14, interactive=False, elem_id="status")
                    gallery = gr.Gallery(label="Samples (imagined faces)", format="png", columns=4, height=330,
                                         object_fit="contain", fit_columns=False, elem_id="samples")
                    gr.Markdown("**Verification** (the paper's figure 1): each pair shows the input and the sample "
                                "downscaled to the input's size, both enlarged without smoothing. They match when "
                                "the sample's downscaling loss is within eps.")
                    verification = gr.Gallery(label="Verification: input | downscaled sample", format="png", columns=2,
                                              height=300, object_fit="contain", fit_columns=False,
                                              elem_id="verification")
                    plot = gr.LinePlot(None, x="step", y="log10 loss", color="curve",
                                       title="Downscaling loss per step (log10), with eps",
                                       color_map=CURVE_COLORS, label="Loss curves",
                                       x_title="step", y_title="log10 downscaling loss", elem_id="losses")
                    with gr.Row():
                        noise_seed = gr.Number(1, precision=0, minimum=0, label="Noise seed")
                        resample_steps = gr.Slider(1, settings.max_steps, value=20, step=1, precision=0,
                                                   label="Refinement steps")
                        resample_button = gr.Button("Resample noise", elem_id="resample")
                    download = gr.File(label="Download all outputs (zip with results.json)", elem_id="download")
                    with gr.Accordion("Report (results.json)", open=False):
                        report = gr.JSON(label="Report")
                    gr.DeepLinkButton(value="Share this page with its result", visible=bool(os.environ.get("SPACE_ID")))
        with gr.Tab("Model card"):
            card = gr.HTML(label="Model card", elem_id="model-card")

        controls = [image, kind, photo_size, face_number, backbone, seed, samples, steps, eps, noise_mode, trainable,
                    learning_rate, schedule, optimizer, l2, l1, geocross, tile, zeroed, degradation, run]
        shown = [gallery, verification, plot, status, report, download]
        quick = {"queue": False, "api_visibility": "private"}

        def finish(event) -> None:
            # Gradio 6.31's page skips .then() steps after an error, so re-enable Run on both outcomes.
            for outcome in (event.success, event.failure):
                outcome(handlers.end, backbone, [run_button, stop_button, banner, card], **quick)

        def wire_run(trigger, api: bool) -> None:
            finish(trigger.then(handlers.begin, None, [run_button, stop_button, run], **quick).then(
                handlers.upsample, controls, shown + [found], api_name="upsample" if api else None,
                api_visibility="public" if api else "private", show_progress_on=[status], preprocess=False,
                **search))

        wire_run(run_button.click(None, None, None, **quick), api=True)
        wire_run(examples.load_input_event, api=False)
        stop_button.click(handlers.stop, [run], None, **quick)
        finish(resample_button.click(handlers.begin, None, [run_button, stop_button, run], **quick).then(
            handlers.resample_noise, [noise_seed, resample_steps, found, run], shown, api_name="resample_noise",
            show_progress_on=[status], **search))
        backbone.change(handlers.model_card, backbone, card, api_name="model_card")
        backbone.change(handlers.weights_banner, backbone, banner, **quick)
        kind.change(handlers.show_kind, kind, [photo_size, face_number], **quick)
        gr.on([image.change, kind.change], handlers.find_faces, [image, kind], [faces, input_info],
              api_visibility="private", preprocess=False)
        faces.select(handlers.pick_face, None, face_number, **quick)
        demo.load(handlers.weights_banner, backbone, banner, **quick)
        demo.load(handlers.model_card, backbone, card, api_visibility="private")
        demo.unload(handlers.end_session)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=2)
    return demo


def _ssr_supported() -> bool:
    """Gradio's server-side rendering needs Node 24 or newer."""
    node = os.environ.get("GRADIO_NODE_PATH") or shutil.which("node")
    if not node:
        return False
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    match = re.match(r"v(\d+)\.", version.strip())
    return bool(match) and int(match.group(1)) >= 24


def launch_options(settings: AppSettings, **overrides: object) -> dict:
    """Keyword arguments of ``demo.launch``: upload cap, SSR only with Node 24+, no run history
    or monitoring kept on the server or in the browser, errors shown only as our sentences."""
    options = {"max_file_size": settings.server_max_file_size, "ssr_mode": _ssr_supported(), "show_error": False,
               "run_history": False, "enable_monitoring": False, "footer_links": ["api", "gradio"],
               "allowed_paths": [str(EXAMPLES)], "css": CSS, "theme": gr.themes.Soft()}
    options.update(overrides)
    return options


SETTINGS = AppSettings.from_env()
HANDLERS = PulseApp(SETTINGS)
demo = build_demo(HANDLERS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the PULSE web app.")
    parser.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    parser.add_argument("--host", default=None, help="address to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    for name in ("pulse_app", "pulse_core"):
        logging.getLogger(name).setLevel(logging.INFO)
    configure_process(tune_allocator=not SETTINGS.plain)  # threads and allocator, as the CLI sets them
    threading.Thread(target=HANDLERS.warm_up, name="pulse-warm-up", daemon=True).start()
    demo.launch(**launch_options(SETTINGS, share=args.share, server_name=args.host, server_port=args.port),
                prevent_thread_lock=True)
    if args.share and not demo.share_url:
        print(f"No public link could be opened (the share server is unreachable from here); the app keeps "
              f"serving locally at {demo.local_url}")
    demo.block_thread()


if __name__ == "__main__":
    main()
