"""``lstm-onnx train`` through Typer's CliRunner: exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from tests.conftest import make_corpus


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_train_command_tiny_jsonl_succeeds(runner: CliRunner, tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus())
    test = _jsonl(tmp_path / "test.jsonl", make_corpus(16, seed=1))
    out = tmp_path / "run"
    args = ["train", str(train), "--preset", "tiny", "--out", str(out), "--test-data", str(test), "--epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
    assert str(out) in result.stdout
    assert "epoch 2:" in result.stderr
    assert (out / "model.safetensors").is_file()


def test_train_command_without_test_data_warns(runner: CliRunner, tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus())
    args = ["train", str(train), "--preset", "tiny", "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"]
    # pytest makes warnings errors (filterwarnings = error); let this one through to the CLI's stderr display.
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "no test split" in result.stderr
    assert "validation accuracy" in result.stdout


def test_train_command_missing_column_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("body,y\nnice,pos\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(path), "--preset", "tiny", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "--text-field" in result.stderr
    assert result.stdout == ""


def test_train_command_unknown_format_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    path.write_bytes(b"x")
    result = runner.invoke(app, ["train", str(path), "--preset", "tiny", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "Unknown data format" in result.stderr


@pytest.mark.parametrize("bad", [["--preset", "huge"], ["--limit", "0"], ["--device", "tpu"]])
def test_train_command_bad_option_exits_2(runner: CliRunner, tmp_path: Path, bad: list[str]) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus(8))
    result = runner.invoke(app, ["train", str(train), "--out", str(tmp_path / "run"), *bad])
    assert result.exit_code == 2


def test_train_command_config_file_applies_and_options_win(runner: CliRunner, tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus())
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"hidden_size": 4}, "train": {"epochs": 5, "lr": 0.03}}), encoding="utf-8")
    out = tmp_path / "run"
    args = ["train", str(train), "--preset", "tiny", "-o", str(out), "--config", str(config), "--epochs", "1", "-v"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert (saved["model"]["hidden_size"], saved["train"]["lr"], saved["train"]["epochs"]) == (4, 0.03, 1)
    assert "resolved config" in result.stderr


def test_train_command_config_unknown_key_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus(8))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"learning_rate": 1}}), encoding="utf-8")
    result = runner.invoke(app, ["train", str(train), "-o", str(tmp_path / "r"), "--config", str(config)])
    assert result.exit_code == 1
    assert "learning_rate" in result.stderr and str(config) in result.stderr


def test_train_command_resume_without_test_data_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", make_corpus())
    test = _jsonl(tmp_path / "test.jsonl", make_corpus(16, seed=1))
    base = ["train", str(train), "--preset", "tiny", "--out", str(tmp_path / "run"), "--quiet"]
    assert runner.invoke(app, [*base, "--test-data", str(test), "--epochs", "1"]).exit_code == 0
    with warnings.catch_warnings():  # the CLI's own "no --test-data" warning, shown on stderr
        warnings.simplefilter("always")
        result = runner.invoke(app, [*base, "--epochs", "2", "--resume"])
    assert result.exit_code == 1, result.output
    assert "error: Cannot resume" in result.stderr and "started with test data 'test.jsonl' (16 texts" in result.stderr
    assert "pass them again with --test-data" in result.stderr and result.stdout == ""
    result = runner.invoke(app, [*base, "--epochs", "2", "--resume", "--test-data", str(test)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout
