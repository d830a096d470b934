"""The command line: outputs, results.json, progress and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pulse_core.cli import main
from pulse_core.imaging import save_png
from tests.helpers import checkerboard, generated_target, tiny_generator, write_upstream

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "40", "--device", "cpu"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    model = tiny_generator("stylegan2", resolution=32)
    weights = write_upstream(model, "rosinality", tmp / "weights")
    inputs = tmp / "inputs"
    inputs.mkdir()
    save_png(generated_target(model, 8, seed=7), inputs / "face.png")
    save_png(checkerboard(8), inputs / "board.png")
    return weights, inputs


def run_cli(args, monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_CACHE", str(tmp_path / "cache"))
    return main(args)


def test_success_writes_images_and_results(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    out = tmp_path / "out"
    code = run_cli(["upsample", str(inputs / "face.png"), "--out", str(out), "--weights", str(weights),
                    "--samples", "2", "--seed", "3", *FAST], monkeypatch, tmp_path)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "face_1.png", "face_1_downscaled.png", "face_2.png", "face_2_downscaled.png", "results.json"]
    data = json.loads((out / "results.json").read_text())
    assert data["weights"] == str(weights) and data["backbone"] == "stylegan2-ffhq"
    assert data["config"]["steps"] == 40 and data["config"]["seed"] == 3
    entry = data["inputs"][0]
    assert entry["status"] == "ok" and entry["found"] == 2 and entry["factor"] == 4
    for k, sample in enumerate(entry["samples"], start=1):
        assert sample["success"] is True and sample["downscaling_loss"] <= sample["eps"] == 2e-3
        assert sample["seed"] == 2 + k and sample["outputs"]["image"] == f"face_{k}.png"
        assert 1 <= sample["step_found"] <= 40
    assert "face.png: 2 of 2 samples found" in capsys.readouterr().err


def test_failure_is_reported_and_exit_3(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    out = tmp_path / "out"
    code = run_cli(["upsample", str(inputs / "board.png"), "--out", str(out), "--weights", str(weights), *FAST],
                   monkeypatch, tmp_path)
    assert code == 3
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]  # nothing that could pass for a success
    sample = json.loads((out / "results.json").read_text())["inputs"][0]["samples"][0]
    assert sample["success"] is False and sample["outputs"] is None and sample["downscaling_loss"] > 2e-3
    assert "no image found that downscales to the input within eps = 2.00e-3; best" in capsys.readouterr().err
    code = run_cli(["upsample", str(inputs / "board.png"), "--out", str(out), "--weights", str(weights),
                    "--keep-failed", *FAST], monkeypatch, tmp_path)
    assert code == 3
    assert (out / "board_1_FAILED_best-attempt.png").is_file()
    assert (out / "board_1_FAILED_best-attempt_downscaled.png").is_file()


def test_folder_with_an_unreadable_file_processes_the_others(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_face.png").write_bytes((inputs / "face.png").read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "wide.png").write_bytes(b"")
    save_png(torch.rand(3, 8, 12), folder / "wide.png")
    out = tmp_path / "out"
    code = run_cli(["upsample", str(folder), "--out", str(out), "--weights", str(weights), *FAST],
                   monkeypatch, tmp_path)
    assert code == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "must be square; it is 12x8 px" in err
    entries = {Path(e["input"]).name: e for e in json.loads((out / "results.json").read_text())["inputs"]}
    assert entries["a_face.png"]["status"] == "ok" and entries["a_face.png"]["found"] == 1
    assert entries["broken.png"]["status"] == "error" and entries["wide.png"]["status"] == "error"
    assert (out / "a_face_1.png").is_file()


def test_bad_arguments_exit_2(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    assert run_cli(["upsample", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"), "--weights",
                    str(weights)], monkeypatch, tmp_path) == 2
    assert "nope.png: no such file or folder" in capsys.readouterr().err
    assert run_cli(["upsample", str(inputs / "face.png"), "--out", str(tmp_path / "o"), "--weights", str(weights),
                    "--steps", "0"], monkeypatch, tmp_path) == 2
    assert "invalid search setting: steps must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["upsample", "x.png"])  # --out missing: argparse's own usage error
    assert info.value.code == 2


def test_weights_that_cannot_load_exit_4(setup, tmp_path, monkeypatch, capsys):
    _, inputs = setup
    code = run_cli(["upsample", str(inputs / "face.png"), "--out", str(tmp_path / "o"), "--weights",
                    str(tmp_path / "missing.pt")], monkeypatch, tmp_path)
    assert code == 4
    assert "cannot load the generator: no such file or folder" in capsys.readouterr().err


def test_convert_then_card(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    out = tmp_path / "converted"
    assert run_cli(["convert", str(weights), "--out", str(out), "--fit-samples", "4096"], monkeypatch, tmp_path) == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "gaussian_fit.safetensors",
                                               "README.md"}
    assert "**Not for facial recognition or identification.**" in (out / "README.md").read_text()
    result = tmp_path / "r"
    assert run_cli(["upsample", str(inputs / "face.png"), "--out", str(result), "--weights", str(out), *FAST],
                   monkeypatch, tmp_path) == 0
    card = tmp_path / "CARD.md"
    assert run_cli(["card", "--backbone", "stylegan2-ffhq", "--out", str(card)], monkeypatch, tmp_path) == 0
    assert card.read_text().startswith("---\n")


def test_module_entry_point_runs(setup, tmp_path):
    weights, inputs = setup
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pulse_core", "upsample", str(inputs / "board.png"), "--out",
                           str(out), "--weights", str(weights), "--steps", "5"], cwd=ROOT, capture_output=True,
                          text=True, env={"PULSE_CACHE": str(tmp_path / "c"), "PATH": "/usr/bin:/bin",
                                          "HOME": str(tmp_path)}, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "board.png" in proc.stderr and "5/5" in proc.stderr  # the progress bar reached the end


def test_convert_push_to_hub_uploads_the_converted_folder(setup, tmp_path, monkeypatch):
    import huggingface_hub

    weights, _ = setup
    calls = []

    class RecordingApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, *, repo_id, folder_path, commit_message):
            calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
            return "https://hub.example/commit/abc"

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    out = tmp_path / "converted"
    code = run_cli(["convert", str(weights), "--out", str(out), "--fit-samples", "4096", "--push-to-hub",
                    "me/pulse-sg2", "--private"], monkeypatch, tmp_path)
    assert code == 0
    assert calls == [("create_repo", "me/pulse-sg2", {"exist_ok": True, "private": True}),
                     ("upload_folder", "me/pulse-sg2",
                      ["README.md", "config.json", "gaussian_fit.safetensors", "model.safetensors"])]


def test_unavailable_cuda_falls_back_to_the_cpu(monkeypatch, caplog):
    from pulse_core.cli.common import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    assert pick_device("cuda").type == "cpu"
    assert "CUDA is not available here; running on the CPU" in caplog.text


def test_degrade_is_applied_recorded_and_validated(setup, tmp_path, monkeypatch, capsys):
    weights, inputs = setup
    out = tmp_path / "out"
    run_cli(["upsample", str(inputs / "face.png"), "--out", str(out), "--weights", str(weights), "--steps", "3",
             "--degrade", "gaussian:25"], monkeypatch, tmp_path)
    entry = json.loads((out / "results.json").read_text())["inputs"][0]
    assert entry["preparation"]["degradation"] == {"kind": "gaussian", "std": 25.0, "length": None, "angle": None,
                                                   "density": None}
    assert run_cli(["upsample", str(inputs / "face.png"), "--out", str(out), "--weights", str(weights),
                    "--degrade", "sparkles:3"], monkeypatch, tmp_path) == 2
    assert "--degrade: " in capsys.readouterr().err
