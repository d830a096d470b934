"""The model card of PULSE with one backbone (Mitchell et al. 2019, as in Menon et al. 2020, Figure 8).

Numbers carry their source: "reported by the paper", or "measured" (a ``metrics.json`` from ``evaluate``)
with date, backbone, revision, settings and sample size. Templates: the top-level ``cards/`` folder."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Mapping

from huggingface_hub import EvalResult, ModelCardData
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from .weights.registry import Backbone

__all__ = ["CARDS_DIR", "CardContext", "Metrics", "NotEvaluated", "Rate", "card_data", "load_metrics",
           "parse_metrics", "render_model_card", "write_model_card"]

CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"
METRICS_SCHEMA = "pulse-metrics/1"
RATE_TOLERANCE = 0.005  # rates and intervals may be rounded to two decimals in metrics.json
CardFormat = Literal["markdown", "html"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_LICENSE_LINKS = {"NVIDIA Source Code License-NC (non-commercial)":
                  "https://github.com/NVlabs/stylegan2/blob/master/LICENSE.txt"}


@dataclass(frozen=True)
class Rate:
    """Successful runs out of runs, with the 95% interval the evaluate command computed."""

    successes: int  # runs whose final downscaling loss was within eps
    runs: int  # runs attempted (images x runs per image)
    rate: float  # successes / runs, as written in the file
    ci95: tuple[float, float]  # (low, high), fractions in [0, 1]


@dataclass(frozen=True)
class NotEvaluated:
    """A manifest image that could not be prepared (unreadable, no face found, wrong size): never searched."""

    index: int  # 0-based row of the manifest
    path: str  # as the manifest lists it
    error: str  # why, in a sentence


@dataclass(frozen=True)
class Metrics:
    """A validated ``pulse-metrics/1`` file: success rates this project measured."""

    date: str  # ISO day of the evaluation
    backbone: str  # registry name of the backbone that ran
    revision: str | None  # commit of the weights that ran; None = not recorded
    input_size: int  # side in pixels of the low-resolution inputs
    runs_per_image: int  # independent searches per image
    search: Mapping[str, Any]  # SearchConfig.to_dict() of the runs
    degradation: str | None  # JSON text of the extra degradation; None = bicubic downscaling only
    manifest: str  # the image list that was evaluated
    images: int
    runs: int  # images x runs_per_image
    overall: Rate
    groups: Mapping[str, Mapping[str, Rate]]  # attribute ("race", "gender") -> subgroup -> rate
    seconds_total: float
    seconds_per_run: float
    device: str
    images_not_evaluated: int = 0  # manifest images left out of every rate: neither successes nor failures
    errors: tuple[NotEvaluated, ...] = ()  # those images, where the file lists them


def _field(obj: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], where: str, minimum: int = 0) -> Any:
    """``obj[key]`` checked against ``kinds`` (never bool; finite; ints >= ``minimum``)."""
    if key not in obj:
        raise ValueError(f"{where}: missing key {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ValueError(f"{where}.{key}: expected {getattr(kinds, '__name__', kinds)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and value < minimum:
        raise ValueError(f"{where}.{key}: out of range (must be finite and >= {minimum}), got {value!r}")
    return value


def _rate(obj: Mapping[str, Any], where: str) -> Rate:
    successes, runs = _field(obj, "successes", int, where), _field(obj, "runs", int, where, 1)
    if successes > runs:
        raise ValueError(f"{where}: successes ({successes}) exceed runs ({runs})")
    rate = float(_field(obj, "rate", (int, float), where))
    if abs(rate - successes / runs) > RATE_TOLERANCE:
        raise ValueError(f"{where}.rate: {rate} is not successes/runs = {successes}/{runs}")
    ci = _field(obj, "ci95", list, where)
    if len(ci) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in ci):
        raise ValueError(f"{where}.ci95: expected [low, high], got {ci!r}")
    low, high = float(ci[0]), float(ci[1])  # NaN fails the range check below
    if not (0 <= low <= high <= 1 and low - RATE_TOLERANCE <= rate <= high + RATE_TOLERANCE):
        raise ValueError(f"{where}.ci95: [{low}, {high}] must lie in [0, 1] and contain the rate {rate}")
    return Rate(successes, runs, rate, (low, high))


def _not_evaluated(item: Any, where: str) -> NotEvaluated:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with index, path and error, got {item!r}")
    return NotEvaluated(_field(item, "index", int, where), _field(item, "path", str, where),
                        _field(item, "error", str, where))


def parse_metrics(data: Any) -> Metrics:
    """Validate the decoded JSON of a metrics file; ``ValueError`` names the first bad field."""
    if not isinstance(data, dict):
        raise ValueError("metrics: expected a JSON object")
    if data.get("schema") != METRICS_SCHEMA:
        raise ValueError(f"metrics.schema: expected {METRICS_SCHEMA!r}, got {data.get('schema')!r}")
    day = _field(data, "date", str, "metrics")
    try:
        valid_day = date.fromisoformat(day).isoformat() == day  # exactly YYYY-MM-DD, and a real day
    except ValueError:
        valid_day = False
    if not valid_day:
        raise ValueError(f"metrics.date: expected an ISO date like 2026-11-25, got {day!r}")
    revision = _field(data, "revision", (str, type(None)), "metrics") or None  # "" is no revision either
    settings = _field(data, "settings", dict, "metrics")
    search = _field(settings, "search", dict, "metrics.settings")
    degradation = _field(settings, "degradation", (str, dict, list, type(None)), "metrics.settings")
    images, runs = _field(data, "images", int, "metrics", 1), _field(data, "runs", int, "metrics", 1)
    per_image = _field(settings, "runs_per_image", int, "metrics.settings", 1)
    if runs != images * per_image:
        raise ValueError(f"metrics.runs: {runs} is not images x runs_per_image = {images} x {per_image}")
    overall = _rate(_field(data, "overall", dict, "metrics"), "metrics.overall")
    if overall.runs != runs:
        raise ValueError(f"metrics.overall.runs: {overall.runs} differs from metrics.runs = {runs}")
    groups: dict[str, dict[str, Rate]] = {}
    for attribute, subgroups in _field(data, "groups", dict, "metrics").items():
        where = f"metrics.groups.{attribute}"
        if not isinstance(subgroups, dict) or not attribute.strip():
            raise ValueError(f"{where}: expected an object of subgroup -> rate")
        groups[attribute] = {name: _rate(_field(subgroups, name, dict, where), f"{where}.{name}") for name in subgroups}
        if sum(r.runs for r in groups[attribute].values()) > runs:
            raise ValueError(f"{where}: its subgroups hold more runs than the {runs} runs overall")
    timings = _field(data, "timings", dict, "metrics")
    errors = tuple(_not_evaluated(item, f"metrics.errors[{k}]")
                   for k, item in enumerate(_field(data, "errors", list, "metrics") if "errors" in data else []))
    not_evaluated = (_field(data, "images_not_evaluated", int, "metrics") if "images_not_evaluated" in data
                     else len(errors))
    if "errors" in data and not_evaluated != len(errors):
        raise ValueError(f"metrics.images_not_evaluated: {not_evaluated}, but metrics.errors lists {len(errors)}")
    return Metrics(
        date=day, backbone=_field(data, "backbone", str, "metrics"), revision=revision,
        input_size=_field(settings, "input_size", int, "metrics.settings", 1), runs_per_image=per_image,
        search=dict(search), degradation=degradation if degradation is None or isinstance(degradation, str)
        else json.dumps(degradation, sort_keys=True),
        manifest=_field(data, "manifest", str, "metrics"), images=images, runs=runs, overall=overall, groups=groups,
        seconds_total=float(_field(timings, "seconds_total", (int, float), "metrics.timings")),
        seconds_per_run=float(_field(timings, "seconds_per_run", (int, float), "metrics.timings")),
        device=_field(timings, "device", str, "metrics.timings"),
        images_not_evaluated=not_evaluated, errors=errors,
    )


def load_metrics(path: str | Path) -> Metrics:
    """Read and validate a ``metrics.json``; ``ValueError`` names the file and the bad field."""
    path = Path(path)
    try:
        return parse_metrics(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class CardContext:
    """Everything a model card states: the backbone, the weights that ran and what was measured."""

    backbone: Backbone
    revision: str | None = None  # exact commit of the weights that ran; None = not recorded
    source: str | None = None  # what was loaded (Hub repo id or local path); None = nothing loaded
    metrics: Metrics | None = None  # this project's measurements; None = nothing measured
    generated_on: str = field(default_factory=lambda: date.today().isoformat())  # ISO day
    version: str = field(default_factory=lambda: getattr(sys.modules[__package__], "__version__", "unreleased"))

    def __post_init__(self) -> None:
        date.fromisoformat(self.generated_on)  # ValueError unless an ISO day
        if self.metrics is not None and self.metrics.backbone != self.backbone.name:
            raise ValueError(f"the metrics were measured with {self.metrics.backbone!r}, "
                             f"not with this card's backbone {self.backbone.name!r}")


# The paper's numbers, verbatim (Menon et al. 2020: tables 1-3 and section 6).
REPORTED = "reported by the paper (Menon et al. 2020, StyleGAN v1 FFHQ)"
PAPER_MOS_128 = (("HR", "3.74"), ("Nearest", "1.01"), ("Bicubic", "1.34"), ("FSRNet", "2.77"),
                 ("FSRGAN", "2.92"), ("PULSE", "3.60"))
PAPER_NIQE_1024 = (("HR", "3.90"), ("Nearest", "12.48"), ("Bicubic", "7.06"), ("PULSE", "2.47"))
PAPER_SUCCESS_X64 = {
    "race": (("Black", "79.2%"), ("East Asian", "87.0%"), ("Indian", "87.4%"), ("Latino/Hispanic", "90.2%"),
             ("Middle Eastern", "87.0%"), ("Southeast Asian", "87.4%"), ("White", "83.4%")),
    "gender": (("Female", "91.4%"), ("Male", "88.6%")),
}
SALMINEN_STYLEGAN_OUTPUTS = (("White", "72.6%"), ("Asian", "13.8%"), ("Black", "10.1%"), ("Indian", "3.4%"))


def _plain(name: str) -> str:  # "Latino_Hispanic" and "Latino/Hispanic" name the same subgroup
    return re.sub(r"[^a-z]", "", name.lower())


def _measured_rate(rate: Rate) -> str:
    low, high = rate.ci95
    return (f"{100 * rate.successes / rate.runs:.1f}% measured ({rate.successes}/{rate.runs} runs; "
            f"95% CI {100 * low:.1f}%-{100 * high:.1f}%)")


def _success_rows(metrics: Metrics | None) -> list[list[str]]:
    """Rows of (attribute, subgroup, reported, measured); every cell says something."""
    measured = {} if metrics is None else {_plain(a): (a, groups) for a, groups in metrics.groups.items()}
    rows = []
    for key in dict.fromkeys([*PAPER_SUCCESS_X64, *measured]):
        attribute, groups = measured.pop(key, (key, {}))
        ours = {_plain(name): (name, rate) for name, rate in groups.items()}
        for name, value in PAPER_SUCCESS_X64.get(key, ()):
            found = ours.pop(_plain(name), None)
            rows.append([attribute, name, value, "not measured" if found is None else _measured_rate(found[1])])
        rows += [[attribute, name, "not reported by the paper", _measured_rate(rate)] for name, rate in ours.values()]
    return rows


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
    rows = []
    for key, value in settings.items():
        text = value if isinstance(value, str) else "none" if value is None else json.dumps(value)
        rows += _flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else [[f"{prefix}{key}", text]]
    return rows


def _template_vars(context: CardContext) -> dict[str, Any]:
    backbone, metrics = context.backbone, context.metrics
    view: dict[str, Any] = {
        "backbone": backbone, "revision": context.revision, "source": context.source,
        "generated_on": context.generated_on, "version": context.version, "reported": REPORTED,
        "hub_url": f"https://huggingface.co/{backbone.repo_id}" if backbone.repo_id else None,
        "defaults": _flatten(backbone.search_defaults.to_dict()),
        "mos": [[name, value, "not measured"] for name, value in PAPER_MOS_128],
        "niqe": [[name, value, "not measured"] for name, value in PAPER_NIQE_1024],
        "salminen": [list(row) for row in SALMINEN_STYLEGAN_OUTPUTS],
        "success_rows": _success_rows(metrics), "measured": None,
    }
    if metrics is not None:
        scale = backbone.resolution / metrics.input_size
        view["measured"] = {"m": metrics, "scale": f"{scale:g}", "overall": _measured_rate(metrics.overall),
                            "eps": metrics.search.get("eps", "not recorded"), "search": _flatten(metrics.search)}
    return view


def card_data(context: CardContext) -> ModelCardData:
    """Hub metadata (the README's YAML front matter), with measured success rates as eval results."""
    backbone, metrics = context.backbone, context.metrics
    tags = ["pulse", "super-resolution", "face-hallucination", "stylegan", backbone.architecture, "face", "gan",
            "latent-space-search", "model-card", "bias-evaluation"]
    origin = context.source or backbone.repo_id or ""  # base_model only when the weights came from a Hub repo
    repo_id = origin.partition(":")[0]  # load_generator describes Hub weights as "owner/name:file"
    hub_id = _HUB_ID.match(repo_id) and ".." not in repo_id and not Path(origin).exists()
    extra: dict[str, Any] = {"base_model": repo_id if hub_id else None}
    if backbone.license == "other":  # the Hub asks for a name and a link for custom licenses
        extra.update(license_name=backbone.license_name, license_link=_LICENSE_LINKS.get(backbone.license_name) or (
            f"https://huggingface.co/{backbone.repo_id}" if backbone.repo_id else None))
    results = []
    if metrics is not None:
        common = dict(task_type="image-to-image", task_name="Face super-resolution by latent space search",
                      dataset_type="pulse-manifest", dataset_name=metrics.manifest,
                      dataset_config=f"{metrics.input_size}px-x{backbone.resolution / metrics.input_size:g}")
        rates = {"all runs": metrics.overall} | {
            f"{attr}: {name}": rate for attr, groups in metrics.groups.items() for name, rate in groups.items()}
        for name, rate in rates.items():
            args = {"measured_on": metrics.date, "runs": rate.runs, "runs_per_image": metrics.runs_per_image,
                    "ci95": list(rate.ci95), "revision": metrics.revision, "eps": metrics.search.get("eps")}
            results.append(EvalResult(**common, metric_type="success_rate", metric_name=f"Success rate ({name})",
                                      metric_value=round(rate.successes / rate.runs, 4), metric_args=args))
    return ModelCardData(license=backbone.license, tags=tags, pipeline_tag="image-to-image", library_name="pytorch",
                         model_name=f"PULSE with {backbone.title}", eval_results=results or None, **extra)


@lru_cache(maxsize=2)
def _environment(fmt: CardFormat) -> Environment:
    # Both formats escape values: in Markdown too, where the Hub would otherwise render raw HTML.
    env = Environment(loader=FileSystemLoader(CARDS_DIR), undefined=StrictUndefined, autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["squash"] = lambda text: Markup(re.sub(r"\s+", " ", escape(text)).strip())  # one line per block
    # Markdown table cells must not contain a bare pipe; HTML cells only need escaping.
    env.filters["cell"] = (lambda v: Markup(escape(v).replace("|", "\\|"))) if fmt == "markdown" else escape
    return env


def render_model_card(context: CardContext, *, fmt: CardFormat = "markdown") -> str:
    """The card as Markdown (with the Hub's YAML front matter) or as an HTML fragment (an ``<article>``)."""
    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt must be 'markdown' or 'html', got {fmt!r}")
    suffix = "md" if fmt == "markdown" else "html"
    variables = _template_vars(context)
    variables.update(layout=f"base.{suffix}.j2", markup=f"markup.{suffix}.j2")
    if fmt == "markdown":
        variables["front_matter"] = Markup(card_data(context).to_yaml())
    text = _environment(fmt).get_template("model_card.j2").render(variables)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    if fmt == "markdown":  # quotes need no escaping in Markdown text; keep the CLI output readable
        text = text.replace("&#39;", "'").replace("&#34;", '"')
    return text


def write_model_card(path: str | Path, context: CardContext, *, fmt: CardFormat | None = None) -> Path:
    """Write the card to ``path`` (HTML for a ``.html``/``.htm`` suffix unless ``fmt`` says otherwise)."""
    path = Path(path)
    chosen: CardFormat = fmt or ("html" if path.suffix.lower() in (".html", ".htm") else "markdown")
    path.write_text(render_model_card(context, fmt=chosen), encoding="utf-8")
    return path
