from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.session import SessionConfig, probe_cuda

runner = CliRunner()


def _run(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def test_predict_writes_jsonl_for_argument_texts(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "A great movie", "awful 😀", "--provider", "cpu")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["A great movie", "awful 😀"]
    assert all(set(r) == {"text", "label", "score", "probabilities"} for r in rows)
    assert result.stderr == ""


def test_predict_reads_jsonl_file_with_multiline_texts(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "great\nfilm"}) + "\n" + json.dumps({"text": "boring", "id": 7}) + "\n")
    result = _run("predict", tiny_bundle_dir, "--file", path)
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["great\nfilm", "boring"]


def test_predict_reads_stdin_one_text_per_line(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "--file", "-", stdin="great film\nawful plot\n")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize(("fmt", "marker"), [("table", "label"), ("csv", "text,label,score,p_neg,p_pos,truncated")])
def test_predict_renders_other_formats(tiny_bundle_dir: Path, fmt: str, marker: str) -> None:
    result = _run("predict", tiny_bundle_dir, "great", "bad \ud800", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert marker in result.stdout and "great" in result.stdout


def test_predict_conllu_on_a_classifier_exits_1_naming_the_formats(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "great", "--format", "conllu")
    assert result.exit_code == 1 and result.stdout == ""
    assert "conllu is for tagging bundles" in result.stderr and "jsonl, table or csv" in result.stderr


def test_predict_empty_line_exits_1_naming_the_line(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "--file", "-", stdin="great\n\nbad\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: line 2 of stdin: Text is empty")
    assert len(result.stderr.strip().splitlines()) == 1


def test_predict_too_long_exits_1_with_truncate_hint(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "the movie was really great", "--max-length", "3")
    assert result.exit_code == 1 and "max_length is 3" in result.stderr and "--truncate" in result.stderr


def test_predict_truncate_warns_on_stderr(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "the movie was really great", "--max-length", "3", "--truncate")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["truncated"] is True
    assert "warning:" in result.stderr and "truncated" in result.stderr


def test_predict_without_texts_is_a_usage_error(tiny_bundle_dir: Path) -> None:
    assert _run("predict", tiny_bundle_dir).exit_code == 2


def test_predict_unknown_provider_is_a_usage_error(tiny_bundle_dir: Path) -> None:
    assert _run("predict", tiny_bundle_dir, "x", "--provider", "tpu").exit_code == 2


@pytest.mark.skipif(probe_cuda(SessionConfig(providers="cpu"))[0], reason="CUDA works here")
def test_predict_cuda_without_gpu_exits_1(tiny_bundle_dir: Path) -> None:
    result = _run("predict", tiny_bundle_dir, "great", "--provider", "cuda")
    assert result.exit_code == 1 and "Provider 'CUDAExecutionProvider' is not available" in result.stderr
    assert result.stdout == ""


def test_predict_tampered_bundle_exits_1(bundle_copy: Path) -> None:
    with open(bundle_copy / "vocab.txt", "a", encoding="utf-8") as fh:
        fh.write("extra\n")
    result = _run("predict", bundle_copy, "great")
    assert result.exit_code == 1 and "Checksum mismatch for vocab.txt" in result.stderr


def test_evaluate_reports_metrics_as_json(tiny_bundle_dir: Path, tmp_path: Path, corpus: list[tuple[str, str]]) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lb}) + "\n" for t, lb in corpus), encoding="utf-8")
    result = _run("evaluate", tiny_bundle_dir, data, "--provider", "cpu")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(report)
    assert sum(map(sum, report["confusion_matrix"])) == len(corpus)
    table = _run("evaluate", tiny_bundle_dir, data, "--format", "table", "--limit", "10")
    assert table.exit_code == 0 and "confusion matrix" in table.stdout


def test_info_shows_manifest_and_providers(tiny_bundle_dir: Path) -> None:
    result = _run("info", tiny_bundle_dir, "--format", "json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["labels"] == ["neg", "pos"] and "CPUExecutionProvider" in info["providers"]["available"]
    assert "passed" in info["parity"]
    assert _run("info", tiny_bundle_dir).exit_code == 0


def test_info_shows_the_character_limit(tiny_bundle_dir: Path) -> None:
    assert json.loads(_run("info", tiny_bundle_dir, "--format", "json").stdout)["max_chars"] == 100_000
    assert "100,000" in _run("info", tiny_bundle_dir).stdout


def test_info_table_never_passes_terminal_escapes_from_the_manifest(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = "evil\x1b]0;pwned\x07\x1b[31mRED[bold]x[/bold]\u202e"  # retitle, recolour, markup, bidi
    manifest["versions"]["toolkit"] = "0.1\x1b[2J"  # clear the screen
    manifest["metrics"] = {"note": "\x1b[1A\x1b[2Kpassed"}  # rewrite the line above
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = _run("info", bundle_copy)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "evil\\x1b]0;pwned\\x07\\x1b[31mRED[bold]x[/bold]\\u202e" in result.stdout  # shown, not obeyed
    assert "toolkit 0.1\\x1b[2J" in result.stdout


def test_installed_script_predicts(tiny_bundle_dir: Path) -> None:
    # The console script installed beside this interpreter (the venv need not be on PATH).
    script = shutil.which("lstm-onnx", path=str(Path(sys.executable).parent))
    assert script is not None, "the lstm-onnx console script is not installed; run `pip install -e .`"
    done = subprocess.run([script, "predict", str(tiny_bundle_dir), "great film"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["label"] in ("neg", "pos")
