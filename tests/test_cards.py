"""The model card: every template and backbone renders, numbers carry their source, values are escaped."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import huggingface_hub
import jinja2
import pytest

from pulse_core import cards
from pulse_core.cards import CardContext, card_data, load_metrics, parse_metrics, render_model_card, write_model_card
from pulse_core.weights.registry import BACKBONES

SECTIONS = ("Model Details", "Intended Use", "Out-of-Scope Uses", "Factors", "Metrics", "Evaluation Data",
            "Training Data", "Quantitative Analyses", "Ethical Considerations", "Caveats and Recommendations")
REPORTED = "reported by the paper (Menon et al. 2020, StyleGAN v1 FFHQ)"
# Typed here from the paper (tables 1-3, section 6), not imported, so that a typo in cards.py fails.
PAPER_SUCCESS = {"Black": "79.2%", "East Asian": "87.0%", "Indian": "87.4%", "Latino/Hispanic": "90.2%",
                 "Middle Eastern": "87.0%", "Southeast Asian": "87.4%", "White": "83.4%", "Female": "91.4%",
                 "Male": "88.6%"}
PAPER_MOS = {"HR": "3.74", "Nearest": "1.01", "Bicubic": "1.34", "FSRNet": "2.77", "FSRGAN": "2.92", "PULSE": "3.60"}
PAPER_NIQE = {"HR": "3.90", "Nearest": "12.48", "Bicubic": "7.06", "PULSE": "2.47"}
SALMINEN = {"White": "72.6%", "Asian": "13.8%", "Black": "10.1%", "Indian": "3.4%"}
HOSTILE = "<script>alert('x')</script>"


def metrics_dict(backbone: str = "stylegan2-ffhq") -> dict:
    """A metrics.json as the evaluate command writes it: 40 images x 5 runs."""
    return {
        "schema": "pulse-metrics/1", "date": "2026-11-25", "backbone": backbone, "revision": "0123abcd",
        "settings": {"input_size": 16, "runs_per_image": 5, "search": BACKBONES[backbone].search_defaults.to_dict(),
                     "degradation": None},
        "manifest": "fairface_sample.csv", "images": 40, "runs": 200,
        "overall": {"successes": 170, "runs": 200, "rate": 0.85, "ci95": [0.79, 0.89]},
        "groups": {
            "race": {"Black": {"successes": 37, "runs": 50, "rate": 0.74, "ci95": [0.6, 0.84]},
                     "Latino_Hispanic": {"successes": 45, "runs": 50, "rate": 0.9, "ci95": [0.79, 0.96]}},
            "gender": {"Female": {"successes": 92, "runs": 100, "rate": 0.92, "ci95": [0.85, 0.96]},
                       "Male": {"successes": 78, "runs": 100, "rate": 0.78, "ci95": [0.69, 0.85]}},
        },
        "timings": {"seconds_total": 1234.5, "seconds_per_run": 6.17, "device": "cpu"},
    }


def context(name: str, measured: bool, **changes) -> CardContext:
    metrics = parse_metrics(metrics_dict(name)) if measured else None
    fields = dict(backbone=BACKBONES[name], revision="0123abcd" if measured else None, source=None,
                  metrics=metrics, generated_on="2026-11-26", version="0.1.0")
    return CardContext(**{**fields, **changes})


def body(markdown: str) -> str:
    """The Markdown after the YAML front matter."""
    assert markdown.startswith("---\n")
    return markdown.split("\n---\n", 1)[1]


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (the separator row dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not all(set(cell) <= {"-"} for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def table_with(tables: list[list[list[str]]], header_part: str) -> list[list[str]]:
    found = [table for table in tables if any(header_part in cell for cell in table[0])]
    assert len(found) == 1, f"expected one table whose header mentions {header_part!r}, found {len(found)}"
    return found[0]


class _TagChecker(HTMLParser):
    """Fails on unbalanced tags and records every element's text and every script tag."""

    VOID = {"br", "hr", "img", "meta", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>, open: {self.stack}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("measured", [False, True], ids=["unmeasured", "measured"])
@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_every_backbone_renders_every_section(name: str, measured: bool, fmt: str) -> None:
    text = render_model_card(context(name, measured), fmt=fmt)
    if fmt == "markdown":
        headings = re.findall(r"^## (.+)$", body(text), flags=re.M)
    else:
        checker = _TagChecker()
        checker.feed(text)
        checker.close()
        assert checker.stack == [] and "script" not in checker.tags
        headings = re.findall(r"<h2>(.+?)</h2>", text)
    assert tuple(headings) == SECTIONS
    assert BACKBONES[name].title.replace("'", "&#39;" if fmt == "html" else "'") in text
    flat = " ".join(text.split())
    assert "Not for facial recognition or identification." in flat
    assert "invents the face of a person who does not exist" in flat
    assert "never recovers the identity" in flat
    assert "successes / runs" in flat  # the per-run definition of the success rate
    assert "72.6%" in flat and "Salminen" in flat
    factors = flat[flat.index("Factors"):flat.index("Metrics", flat.index("Factors"))]
    for factor in ("gender", "age", "race", "Fitzpatrick skin type", "lighting", "pose", "accessories",
                   "background", "hairstyle", "camera focal length"):
        assert factor in factors, factor


def test_templates_use_strict_undefined_and_autoescape() -> None:
    env = cards._environment("html")
    assert env.undefined is jinja2.StrictUndefined and env.autoescape is True
    assert Path(env.loader.searchpath[0]) == Path(cards.__file__).resolve().parent.parent / "cards"
    variables = cards._template_vars(context("stylegan2-ffhq", measured=True))
    del variables["success_rows"]
    variables.update(layout="base.html.j2", markup="markup.html.j2")
    with pytest.raises(jinja2.UndefinedError, match="success_rows"):
        env.get_template("model_card.j2").render(variables)


def test_front_matter_parses_and_round_trips() -> None:
    for name, backbone in BACKBONES.items():
        data = huggingface_hub.ModelCard(render_model_card(context(name, measured=False))).data
        assert data.license == backbone.license
        assert {"pulse", "super-resolution", "stylegan", "face", "gan"} <= set(data.tags)
        assert data.pipeline_tag == "image-to-image"
        assert data.to_dict() == card_data(context(name, measured=False)).to_dict()
        if backbone.license == "other":
            assert data.license_name == backbone.license_name and data.license_link.startswith("https://")
        else:
            assert data.get("license_name") is None
        assert data.get("base_model") == backbone.repo_id  # None where the registry has no Hub default


def test_base_model_only_for_hub_sources(tmp_path: Path) -> None:
    local = tmp_path / "weights"
    local.mkdir()
    assert card_data(context("stylegan2-ffhq", False, source=str(local))).get("base_model") is None
    assert card_data(context("stylegan-ffhq", False, source="owner/pulse-weights")).base_model == "owner/pulse-weights"
    assert card_data(context("stylegan-ffhq", False, source="../weights/ffhq.pt")).get("base_model") is None
    described = card_data(context("stylegan2-ffhq", False, source="owner/ffhq:stylegan2-ffhq-config-f.pt"))
    assert described.base_model == "owner/ffhq"  # load_generator's "owner/name:file" description


def test_measured_metrics_become_eval_results() -> None:
    data = huggingface_hub.ModelCard(render_model_card(context("stylegan2-ffhq", measured=True))).data
    results = {result.metric_name: result for result in data.eval_results}
    assert results["Success rate (all runs)"].metric_value == pytest.approx(0.85)
    assert results["Success rate (race: Black)"].metric_value == pytest.approx(0.74)
    assert results["Success rate (gender: Male)"].metric_args["runs"] == 100
    assert results["Success rate (all runs)"].metric_args["measured_on"] == "2026-11-25"
    assert {result.dataset_name for result in data.eval_results} == {"fairface_sample.csv"}
    assert huggingface_hub.ModelCard(render_model_card(context("stylegan2-ffhq", False))).data.eval_results is None


@pytest.mark.parametrize("measured", [False, True], ids=["unmeasured", "measured"])
def test_reported_numbers_sit_in_labelled_columns(measured: bool) -> None:
    tables = markdown_tables(body(render_model_card(context("stylegan2-ffhq", measured))))
    success = table_with(tables, "Reported by the paper (Menon et al. 2020, StyleGAN v1 FFHQ)")
    assert success[0] == ["Attribute", "Subgroup", "Reported by the paper (Menon et al. 2020, StyleGAN v1 FFHQ)",
                          "Measured by this project"]
    rows = {row[1]: row for row in success[1:]}
    assert {group: rows[group][2] for group in PAPER_SUCCESS} == PAPER_SUCCESS
    mos = table_with(tables, "MOS, " + REPORTED)
    assert {row[0]: row[1] for row in mos[1:]} == PAPER_MOS
    niqe = table_with(tables, "NIQE, " + REPORTED)
    assert {row[0]: row[1] for row in niqe[1:]} == PAPER_NIQE
    salminen = table_with(tables, "reported by the paper (quoting Salminen et al.)")
    assert {row[0]: row[1] for row in salminen[1:]} == SALMINEN
    for table in tables:  # no blank cell anywhere
        assert all(cell for row in table for cell in row), table
    if measured:
        assert rows["Black"][3] == "74.0% measured (37/50 runs; 95% CI 60.0%-84.0%)"
        assert rows["Latino/Hispanic"][3].startswith("90.0% measured (45/50 runs")  # FairFace's Latino_Hispanic
        assert rows["East Asian"][3] == "not measured"
    else:
        assert {row[3] for row in success[1:]} == {"not measured"}


def test_measured_rate_carries_date_backbone_revision_and_sample_size() -> None:
    flat = " ".join(body(render_model_card(context("stylegan2-ffhq", measured=True))).split())
    sentence = re.search(r"\*\*Overall\*\*: (.+?)\. Success threshold", flat)
    assert sentence is not None
    assert sentence.group(1) == ("85.0% measured (170/200 runs; 95% CI 79.0%-89.0%) by this project on 2026-11-25 "
                                 "with stylegan2-ffhq at revision 0123abcd, 16x16 inputs (x64), 40 images x 5 runs = "
                                 "200 runs")
    assert "Success threshold eps = 0.002" in flat and "on cpu" in flat
    assert "Revision mismatch" not in flat
    assert "not the paper's StyleGAN (v1)" in flat  # a StyleGAN2 measurement is flagged as not comparable


def test_unmeasured_card_says_so_in_words() -> None:
    for fmt in ("markdown", "html"):
        flat = " ".join(render_model_card(context("stylegan-ffhq", measured=False), fmt=fmt).split())
        assert "This project has measured nothing for this card" in flat
        assert "this project has not measured success rates for stylegan-ffhq" in flat
        assert "No revision was recorded" in flat
        assert " measured (" not in flat  # no measured number anywhere


def test_revision_mismatch_is_called_out() -> None:
    flat = " ".join(render_model_card(context("stylegan2-ffhq", True, revision="feedbeef")).split())
    assert "Revision mismatch" in flat and "revision 0123abcd" in flat and "describes feedbeef" in flat


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    data = metrics_dict()
    data["revision"], data["manifest"] = HOSTILE, HOSTILE + ".csv"
    data["groups"]["race"][HOSTILE + "|x"] = {"successes": 1, "runs": 5, "rate": 0.2, "ci95": [0.04, 0.62]}
    hostile = CardContext(BACKBONES["stylegan2-ffhq"], revision=HOSTILE, source=HOSTILE, metrics=parse_metrics(data),
                          generated_on="2026-11-26")
    html = render_model_card(hostile, fmt="html")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    checker = _TagChecker()
    checker.feed(html)
    assert "script" not in checker.tags and HOSTILE in "".join(checker.text)
    markdown = render_model_card(hostile)
    assert "<script" not in body(markdown)
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in body(markdown)
    hostile_row = [row for row in markdown_tables(body(markdown))[1] if row[1].endswith("|x")]
    assert hostile_row and hostile_row[0][2] == "not reported by the paper"  # the pipe did not split the row
    assert huggingface_hub.ModelCard(markdown).data.eval_results[0].metric_args["revision"] == HOSTILE


def test_write_model_card_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    ctx = context("stylegan2-ffhq", measured=True)
    markdown = write_model_card(tmp_path / "README.md", ctx)
    html = write_model_card(tmp_path / "card.html", ctx)
    assert markdown.read_text(encoding="utf-8") == render_model_card(ctx)
    assert html.read_text(encoding="utf-8").startswith('<article class="pulse-model-card"')
    with pytest.raises(ValueError, match="fmt"):
        render_model_card(ctx, fmt="pdf")  # type: ignore[arg-type]


def test_load_metrics_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics_dict()), encoding="utf-8")
    metrics = load_metrics(path)
    assert (metrics.images, metrics.runs, metrics.runs_per_image, metrics.input_size) == (40, 200, 5, 16)
    assert metrics.overall.ci95 == (0.79, 0.89) and metrics.groups["gender"]["Male"].successes == 78
    assert metrics.search["eps"] == BACKBONES["stylegan2-ffhq"].search_defaults.eps
    assert metrics.degradation is None and metrics.device == "cpu"


def _mutate(path: tuple, value) -> dict:
    data = copy.deepcopy(metrics_dict())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    (("schema",), "pulse-metrics/0", "metrics.schema: expected 'pulse-metrics/1'"),
    (("date",), "25/11/2026", "metrics.date: expected an ISO date"),
    (("date",), "2026-02-30", "metrics.date"),
    (("revision",), KeyError, "missing key 'revision'"),
    (("runs",), 199, r"metrics.runs: 199 is not images x runs_per_image = 40 x 5"),
    (("images",), True, "metrics.images: expected int"),
    (("settings", "runs_per_image"), 0, r"metrics.settings.runs_per_image: out of range"),
    (("settings", "search"), "steps=100", "metrics.settings.search: expected dict"),
    (("overall", "successes"), 201, r"metrics.overall: successes \(201\) exceed runs \(200\)"),
    (("overall", "rate"), 0.5, r"metrics.overall.rate: 0.5 is not successes/runs = 170/200"),
    (("overall", "ci95"), [0.9, 0.95], r"metrics.overall.ci95: \[0.9, 0.95\] must lie in \[0, 1\] and contain"),
    (("overall", "ci95"), [0.8], r"metrics.overall.ci95: expected \[low, high\]"),
    (("groups", "race", "Black"), [37, 50], "metrics.groups.race.Black: expected dict"),
    (("groups", "race", "Black", "runs"), 40, r"metrics.groups.race.Black.rate: 0.74 is not successes/runs = 37/40"),
    (("groups", "gender", "Male"), {"successes": 90, "runs": 110, "rate": 0.82, "ci95": [0.7, 0.9]},
     "metrics.groups.gender: its subgroups hold more runs than the 200 runs overall"),
    (("timings", "seconds_total"), float("nan"), "metrics.timings.seconds_total: out of range"),
    (("timings",), KeyError, "metrics: missing key 'timings'"),
    (("images_not_evaluated",), -1, "metrics.images_not_evaluated: out of range"),
    (("images_not_evaluated",), "2", "metrics.images_not_evaluated: expected int"),
    (("errors",), {"index": 3}, "metrics.errors: expected list"),
    (("errors",), ["a.png"], r"metrics.errors\[0\]: expected an object with index, path and error"),
    (("errors",), [{"index": 3, "path": "a.png"}], r"metrics.errors\[0\]: missing key 'error'"),
    (("errors",), [{"index": "3", "path": "a.png", "error": "a.png: no face"}],
     r"metrics.errors\[0\].index: expected int"),
])
def test_load_metrics_rejects_bad_files(tmp_path: Path, path: tuple, value, message: str) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text(json.dumps(_mutate(path, value)), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        load_metrics(bad)
    assert str(error.value).startswith(f"{bad}: ")


def test_load_metrics_rejects_non_json(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"metrics.json: not valid JSON"):
        load_metrics(bad)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_metrics(bad)


def test_metrics_must_belong_to_the_cards_backbone() -> None:
    with pytest.raises(ValueError, match="measured with 'stylegan2-ffhq'"):
        CardContext(BACKBONES["stylegan-ffhq"], metrics=parse_metrics(metrics_dict("stylegan2-ffhq")))
    with pytest.raises(ValueError):
        CardContext(BACKBONES["stylegan-ffhq"], generated_on="yesterday")


def test_cards_module_does_not_import_gradio() -> None:
    code = "import sys, pulse_core.cards; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(cards.__file__).resolve().parent.parent)


NOT_EVALUATED = [{"index": 7, "path": "img/7.jpg", "error": "img/7.jpg: no face was found"},
                 {"index": 9, "path": "img/9.jpg", "error": "img/9.jpg: not an image"}]


def test_images_not_evaluated_are_read_and_stated() -> None:
    assert (parse_metrics(metrics_dict()).images_not_evaluated, parse_metrics(metrics_dict()).errors) == (0, ())
    data = metrics_dict() | {"images_not_evaluated": 2, "errors": NOT_EVALUATED}
    metrics = parse_metrics(data)
    assert metrics.images_not_evaluated == 2 and metrics.errors[1] == cards.NotEvaluated(9, "img/9.jpg",
                                                                                           "img/9.jpg: not an image")
    assert parse_metrics(metrics_dict() | {"errors": NOT_EVALUATED}).images_not_evaluated == 2
    assert parse_metrics(metrics_dict() | {"images_not_evaluated": 3}).images_not_evaluated == 3
    with pytest.raises(ValueError, match="metrics.images_not_evaluated: 3, but metrics.errors lists 2"):
        parse_metrics(data | {"images_not_evaluated": 3})

    for fmt in ("markdown", "html"):
        flat = " ".join(render_model_card(context("stylegan2-ffhq", True, metrics=metrics), fmt=fmt).split())
        quantitative = flat[flat.index("Quantitative Analyses"):flat.index("Ethical Considerations")]
        assert "2 of the 42 images taken from fairface_sample.csv could not be prepared or evaluated" in quantitative
        assert "They count neither as successes nor as failures" in quantitative
        assert "every rate here is over the 40 images that were evaluated" in quantitative
        assert "img/7.jpg" not in flat  # the count, not the file names, goes into a public card
    for measured in (False, True):  # nothing to say when every image was evaluated, or nothing measured
        assert "Images not evaluated" not in render_model_card(context("stylegan2-ffhq", measured))


@pytest.mark.parametrize("fmt", ["markdown", "html"])
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_caveats_name_the_alignment_models_and_their_limits(name: str, fmt: str) -> None:
    flat = " ".join(render_model_card(context(name, measured=False), fmt=fmt).split())
    caveats = flat[flat.index("Caveats and Recommendations"):]
    alignment = caveats[caveats.index("Input alignment"):]
    alignment = alignment[:alignment.index("</li>") if fmt == "html" else alignment.index(" - ")]
    for fact in ("dlib", "roughly frontal faces only", "profiles are missed", "smaller than about 40 px",
                 "shrunk to at most 800 px", "68-point landmark model", "face-recognition-models",
                 "iBUG 300-W dataset, whose license excludes commercial use", "cannot be used in a commercial product"):
        assert fact in alignment, fact
