"""evaluate / merge: success rates per subgroup with Wilson intervals, resuming, shards.

A tiny 32 px generator searches 8x8 inputs (--prepare as-is): faces it made itself are found
within eps, a checkerboard and uniform noise are not, and a broken file is an error record.
"""

import json
import shutil

import pytest
import torch

import pulse_core.evaluate as evaluate_module
from pulse_core.cards import CardContext, load_metrics, render_model_card
from pulse_core.cli import main
from pulse_core.config import SearchConfig
from pulse_core.downsample import downscale
from pulse_core.evaluate import (
    EvaluationSettings,
    ManifestError,
    PrepareError,
    RecordsError,
    Shard,
    merge,
    metrics_from_records,
    prepare_image,
    read_manifest,
)
from pulse_core.imaging import decode_image, save_png
from pulse_core.stats import RecordLog, compute_metrics, read_records, wilson_interval
from pulse_core.weights import get_backbone
from pulse_core.weights.loading import load_converted, resolve_source, save_converted
from tests.helpers import checkerboard, generated_target, tiny_generator, write_upstream

# 2 runs per image; 5 steps bring the generator's own faces from ~0.04 to ~0.015, while the board
# stays ~0.25 and the noise ~0.07: eps 0.03 separates them with a margin either side.
FAST = ["--prepare", "as-is", "--input-size", "8", "--runs-per-image", "2", "--steps", "5", "--eps", "0.03",
        "--device", "cpu"]
MANIFEST = """file,race,gender
images/face0.png,A,Female
images/board.png,A,Male
images/face1.png,B,Female
images/noise.png,B,
images/broken.png,B,Female
"""
FACES = {"images/face0.png", "images/face1.png"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    model = tiny_generator("stylegan2", resolution=32)
    # Converted weights with their Gaussian fit beside them: loading skips the (slow) fit.
    upstream = write_upstream(model, "rosinality", tmp / "upstream")
    weights = save_converted(load_converted(resolve_source(upstream)), tmp / "weights", model.fit_info,
                             backbone="stylegan2-ffhq")
    images = tmp / "images"
    images.mkdir()
    rng = torch.Generator().manual_seed(7)
    for k in range(2):
        save_png(generated_target(model, 8, generator=rng), images / f"face{k}.png")
    save_png(checkerboard(8), images / "board.png")
    save_png(torch.rand(3, 8, 8, generator=rng), images / "noise.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    manifest = tmp / "faces.csv"
    manifest.write_text(MANIFEST)
    return {"tmp": tmp, "weights": weights, "manifest": manifest}


def run_cli(data, *args):
    return main(["evaluate", str(data["manifest"]), "--weights", str(data["weights"]), *FAST, *args])


def without_timings(metrics):
    return {k: v for k, v in metrics.items() if k != "timings"}


@pytest.fixture(scope="module")
def single_run(data):
    """One uninterrupted evaluation of the whole manifest: the reference for the other tests."""
    out = data["tmp"] / "single"
    assert run_cli(data, "--out", str(out)) == 0
    return out, json.loads((out / "metrics.json").read_text())


def count_searches(monkeypatch, interrupt_at=None):
    calls = []
    real = evaluate_module.search

    def search(*args, **kwargs):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "search", search)
    return calls


def test_wilson_interval_matches_hand_computed_values():
    assert wilson_interval(3, 5) == pytest.approx((0.2307, 0.8824), abs=1e-4)
    assert wilson_interval(4, 6) == pytest.approx((0.3000, 0.9032), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(4, 4) == pytest.approx((0.5101, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_rates_per_group_with_intervals_and_error_records(data, single_run, capsys):
    out, metrics = single_run
    assert metrics["images"] == 4 and metrics["runs"] == 8 and metrics["settings"]["runs_per_image"] == 2
    assert metrics["overall"]["successes"] == 4 and metrics["overall"]["rate"] == 0.5
    assert metrics["overall"]["ci95"] == pytest.approx([0.2152, 0.7848], abs=1e-4)
    race, gender = metrics["groups"]["race"], metrics["groups"]["gender"]
    # broken.png (B, Female) is an error, and noise.png has no gender: neither counts there.
    assert {k: (v["successes"], v["runs"]) for k, v in race.items()} == {"A": (2, 4), "B": (2, 4)}
    assert {k: (v["successes"], v["runs"]) for k, v in gender.items()} == {"Female": (4, 4), "Male": (0, 2)}
    assert race["B"]["ci95"] == pytest.approx([0.1500, 0.8500], abs=1e-4)
    assert gender["Female"]["ci95"] == pytest.approx([0.5101, 1.0], abs=1e-4)
    assert gender["Male"]["ci95"] == pytest.approx([0.0, 0.6576], abs=1e-4) and gender["Male"]["rate"] == 0
    assert [e["path"] for e in metrics["errors"]] == ["images/broken.png"] and metrics["images_not_evaluated"] == 1
    assert metrics["settings"]["search"]["samples"] == 2 and metrics["settings"]["prepare"] == "as-is"
    assert metrics["backbone"] == "stylegan2-ffhq" and metrics["manifest"] == "faces.csv"

    header, records, _ = read_records(out / "records.jsonl")
    assert header["shard"] == "1/1" and sorted(records) == list(range(5))
    for record in records.values():
        if record["path"] in FACES:
            assert [r["seed"] for r in record["runs"]] == [0, 1]
            assert all(r["success"] and r["loss"] <= 0.03 for r in record["runs"])
        elif record["error"] is None:
            assert not any(r["success"] for r in record["runs"]) and min(r["loss"] for r in record["runs"]) > 0.045
    assert "broken.png" in records[4]["error"] and records[4]["runs"] == []
    assert metrics_from_records(out) == metrics  # the metrics are a function of the records

    loaded = load_metrics(out / "metrics.json")
    assert loaded.overall.successes == 4 and loaded.groups["gender"]["Male"].runs == 2
    card = render_model_card(CardContext(get_backbone("stylegan2-ffhq"), metrics=loaded))
    assert "50.0% measured (4/8 runs; 95% CI 21.5%-78.5%)" in card

    # Rerunning a finished evaluation searches nothing and rewrites the same metrics.
    capsys.readouterr()
    assert run_cli(data, "--out", str(out)) == 0
    assert "5 already recorded in" in capsys.readouterr().err  # the error record counts as done too
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_interrupted_run_continues_where_it_stopped(data, single_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "resumed"
    count_searches(monkeypatch, interrupt_at=3)
    assert run_cli(data, "--out", str(out)) == 130
    _, done, _ = read_records(out / "records.jsonl")
    assert sorted(done) == [0, 1]  # face0 and board; face1 was in flight
    with (out / "records.jsonl").open("ab") as f:  # a write cut off mid-line by the interruption
        f.write(b'{"index": 2, "path": "images/fa')
    capsys.readouterr()
    calls = count_searches(monkeypatch)
    assert run_cli(data, "--out", str(out)) == 0
    assert len(calls) == 2  # face1 and noise; broken.png needs no search
    assert "2 already recorded" in capsys.readouterr().err
    _, after, _ = read_records(out / "records.jsonl")
    assert after[0] == done[0] and after[1] == done[1]  # finished images were not redone
    assert without_timings(json.loads((out / "metrics.json").read_text())) == without_timings(single_run[1])


def test_continuing_with_other_settings_is_refused(data, single_run, capsys):
    out, _ = single_run
    before = (out / "records.jsonl").read_bytes()
    assert run_cli(data, "--out", str(out), "--steps", "6") == 2
    err = capsys.readouterr().err
    assert "cannot be continued: settings.search.steps is 5 there, 6 here" in err and "another --out" in err
    assert run_cli(data, "--out", str(out), "--shard", "1/2") == 2
    assert "shard is '1/1' there, '1/2' here" in capsys.readouterr().err
    assert (out / "records.jsonl").read_bytes() == before
    header, _, _ = read_records(out / "records.jsonl")
    # One writer per folder: a second one is refused.
    with RecordLog.open(out, header) as log, pytest.raises(RecordsError, match="another evaluate is writing to"):
        RecordLog.open(out, header)
    assert len(log.records) == 5 and (out / "records.jsonl").read_bytes() == before


def test_shards_merge_into_the_metrics_of_one_run(data, single_run, tmp_path, capsys):
    parts = [tmp_path / "part1", tmp_path / "part2"]
    for i, part in enumerate(parts, start=1):
        assert run_cli(data, "--out", str(part), "--shard", f"{i}/2") == 0
    first = json.loads((parts[0] / "metrics.json").read_text())
    assert first["shard"] == "1/2" and first["images"] == 2 and first["errors"][0]["index"] == 4  # rows 0, 2, 4
    assert sorted(read_records(parts[1] / "records.jsonl")[1]) == [1, 3]
    assert "merge DIR1 DIR2" in capsys.readouterr().err

    merged = tmp_path / "merged"
    assert main(["merge", str(parts[1]), str(parts[0]), "--out", str(merged)]) == 0
    metrics = json.loads((merged / "metrics.json").read_text())
    assert without_timings(metrics) == without_timings(single_run[1])
    assert metrics_from_records(merged) == metrics
    assert load_metrics(merged / "metrics.json").runs == 8

    assert main(["merge", str(parts[0]), "--out", str(tmp_path / "m1")]) == 2
    err = capsys.readouterr().err
    assert "2 of the 5 images of faces.csv have no record (rows 1, 3)" in err
    assert main(["merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "m2")]) == 2
    assert "is recorded in both" in capsys.readouterr().err
    assert main(["merge", str(parts[0]), str(parts[1]), "--out", str(merged)]) == 2
    assert "already holds records.jsonl" in capsys.readouterr().err

    # A shard searched with another eps measures something else: merge names the difference.
    other = tmp_path / "other"
    shutil.copytree(parts[1], other)
    lines = (other / "records.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    header["settings"]["search"]["eps"] = 0.002
    (other / "records.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert main(["merge", str(parts[0]), str(other), "--out", str(tmp_path / "m3")]) == 2
    assert "measured different things: settings.search.eps is 0.03 there, 0.002 here" in capsys.readouterr().err
    with pytest.raises(RecordsError, match="weights.sha256"):
        header["settings"]["search"]["eps"], header["weights"]["sha256"] = 0.03, "0" * 64
        (other / "records.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
        merge([parts[0], other], tmp_path / "m4")


def test_manifest_errors_are_clear(data, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,race\na.png,A\n")
    assert main(["evaluate", str(bad), "--out", str(tmp_path / "o"), "--weights", str(data["weights"])]) == 2
    err = capsys.readouterr().err
    assert "no image column 'file' or 'path'; the columns are image, race" in err and "--image-column" in err
    assert read_manifest(bad, image_column="image").rows[0].attributes == {"race": "A"}
    bad.write_text("path,race\na.png,A,extra\n")
    with pytest.raises(ManifestError, match="line 2: 3 fields, but the header has 2"):
        read_manifest(bad)
    bad.write_text("path,race\n,A\n")
    with pytest.raises(ManifestError, match="line 2: the image column 'path' is empty"):
        read_manifest(bad)
    bad.write_text("\ufeffpath,race\n\n")
    with pytest.raises(ManifestError, match="lists no images"):
        read_manifest(bad)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        read_manifest(tmp_path / "missing.csv")
    manifest = read_manifest(data["manifest"])
    assert manifest.attributes == ("race", "gender") and manifest.rows[3].attributes["gender"] == ""
    assert manifest.resolve(manifest.rows[0]) == data["tmp"] / "images" / "face0.png"


def test_bad_arguments_and_weights(data, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["evaluate", str(data["manifest"]), "--out", out, "--shard", "3/2"]) == 2
    assert "--shard: a shard is i/n with 1 <= i <= n" in capsys.readouterr().err
    assert main(["evaluate", str(data["manifest"]), "--out", out, "--input-size", "12"]) == 2
    assert "input size must be a power of two" in capsys.readouterr().err
    assert main(["evaluate", str(data["manifest"]), "--out", out, "--degrade", "blur"]) == 2
    assert "--degrade: unknown degradation" in capsys.readouterr().err
    assert main(["evaluate", str(data["manifest"]), "--out", out, "--weights", str(tmp_path / "none.pt")]) == 4
    assert "cannot load the generator" in capsys.readouterr().err
    assert run_cli(data, "--out", out, "--input-size", "64") == 2  # larger than the 32 px generator
    assert "cannot be reached from the generator's 32 px" in capsys.readouterr().err


def test_preparations(tmp_path):
    photo = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(0))
    save_png(photo, tmp_path / "wide.png")
    settings = EvaluationSettings(SearchConfig(samples=2), input_size=8, prepare="resize")
    lr_image, info = prepare_image(tmp_path / "wide.png", settings, name="wide.png", seed=0)
    decoded = decode_image(tmp_path / "wide.png")
    assert info["source_size"] == [32, 40]
    torch.testing.assert_close(lr_image, downscale(decoded[None, :, :, 4:36], 4)[0].clamp(0, 1))
    save_png(photo[:, :24, :24], tmp_path / "odd.png")
    with pytest.raises(PrepareError, match="odd.png: its central square is 24 px, not 8 px times a power of two"):
        prepare_image(tmp_path / "odd.png", settings, name="odd.png", seed=0)
    as_is = EvaluationSettings(SearchConfig(samples=2), input_size=8, prepare="as-is")
    with pytest.raises(PrepareError, match=r"wide.png: --prepare as-is needs 8x8 px inputs; it is 40x32 px"):
        prepare_image(tmp_path / "wide.png", as_is, name="wide.png", seed=0)
    noisy = EvaluationSettings(SearchConfig(samples=2), input_size=8, prepare="resize", degradation="gaussian:50")
    assert noisy.degradation == "gaussian:50" and noisy.to_dict()["degradation"] == "gaussian:50"
    first = prepare_image(tmp_path / "wide.png", noisy, name="wide.png", seed=3)[0]
    assert torch.equal(first, prepare_image(tmp_path / "wide.png", noisy, name="wide.png", seed=3)[0])
    assert not torch.equal(first, lr_image) and not torch.equal(
        first, prepare_image(tmp_path / "wide.png", noisy, name="wide.png", seed=4)[0])
    assert Shard.parse("2/3").selects(4) and not Shard.parse("2/3").selects(3)


def test_metrics_need_one_evaluated_image():
    header = {"settings": {"runs_per_image": 2}, "shard": "1/1"}
    record = {"index": 0, "path": "a.png", "attributes": {}, "runs": [], "error": "a.png: no such file",
              "seconds": 0.1, "device": "cpu", "finished": "2026-01-01T00:00:00+00:00"}
    with pytest.raises(RecordsError, match="no image could be evaluated: 1 of 1 failed to prepare"):
        compute_metrics(header, [record])


def test_attributes_choose_the_grouping_columns(data, single_run, tmp_path, capsys):
    # FairFace's label CSVs carry a service_test column: a flag, not a group of people.
    with_flag = data["tmp"] / "faces_service.csv"
    lines = MANIFEST.splitlines()
    flags = ["True", "False", "True", "False", "True"]
    with_flag.write_text("\n".join([lines[0] + ",service_test"] + [f"{line},{flag}" for line, flag in
                                                                    zip(lines[1:], flags)]) + "\n")

    def evaluate(out, *args):
        return main(["evaluate", str(with_flag), "--weights", str(data["weights"]), *FAST, "--out", str(out), *args])

    everything = tmp_path / "every-column"
    assert evaluate(everything, "--shard", "1/2") == 0  # the default: every column but the image column
    assert set(json.loads((everything / "metrics.json").read_text())["groups"]) == {"race", "gender", "service_test"}

    out = tmp_path / "chosen"
    assert evaluate(out, "--attributes", "gender", "race") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["groups"]) == ["race", "gender"]  # in the CSV's order
    assert metrics["settings"]["attributes"] == ["race", "gender"]
    assert metrics["groups"] == single_run[1]["groups"] and metrics["overall"] == single_run[1]["overall"]
    header, records, _ = read_records(out / "records.jsonl")
    assert header["manifest"]["attributes"] == ["race", "gender"]
    assert all(set(record["attributes"]) == {"race", "gender"} for record in records.values())

    # The choice is part of the measurement: continuing without it, or merging it with the default, is refused.
    capsys.readouterr()
    assert evaluate(out) == 2
    assert "settings.attributes is ['race', 'gender'] there, None here" in capsys.readouterr().err
    assert evaluate(out, "--attributes", "race", "gender") == 0  # the same choice continues
    other_half = tmp_path / "chosen-2"
    assert evaluate(other_half, "--shard", "2/2", "--attributes", "race", "gender") == 0
    capsys.readouterr()
    assert main(["merge", str(everything), str(other_half), "--out", str(tmp_path / "m")]) == 2
    assert "measured different things: settings.attributes is None there, ['race', 'gender'] here" in (
        capsys.readouterr().err)

    # Unknown names fail before the weights load, naming the columns there are.
    assert main(["evaluate", str(with_flag), "--out", str(tmp_path / "o"), "--weights", str(tmp_path / "none.pt"),
                 "--attributes", "race", "colour"]) == 2
    assert ("no attribute column 'colour'; the attribute columns are race, gender, service_test (and the image "
            "column 'file')") in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_attribute_settings_are_validated_and_normalised(data):
    manifest = read_manifest(data["manifest"])
    assert manifest.select_attributes(None) is None
    assert manifest.select_attributes(["gender", "race"]) is None  # every column: the default, spelt once
    assert manifest.select_attributes(["gender"]) == ("gender",)
    with pytest.raises(ManifestError, match="no attribute column 'file'; the attribute columns are race, gender"):
        manifest.select_attributes(["file"])
    assert EvaluationSettings(attributes=["race"]).attributes == ("race",)
    assert EvaluationSettings(attributes=["race"]).to_dict()["attributes"] == ["race"]
    assert EvaluationSettings().to_dict()["attributes"] is None
    for bad in ([], "race", ["race", ""], ["race", 3]):
        with pytest.raises(ValueError, match="attributes must be a non-empty list of column names"):
            EvaluationSettings(attributes=bad)
    with pytest.raises(ValueError, match="attributes name a column twice"):
        EvaluationSettings(attributes=("race", "race"))
