"""`lstm-onnx export` / `verify` exit codes and streams."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.contract import MANIFEST_FILE, MODEL_FILE
from tests.conftest import make_corpus

runner = CliRunner()


def test_export_cli_writes_bundle(tiny_run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tiny_run_dir), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "b" / MANIFEST_FILE).is_file()
    assert "onnxruntime-cpu" in result.stdout


def test_export_cli_existing_bundle_exit_1(tiny_bundle_dir: Path, tiny_run_dir: Path) -> None:
    result = runner.invoke(app, ["export", str(tiny_run_dir), "--out", str(tiny_bundle_dir)])
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert result.stdout == ""


def test_verify_cli_passes(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = runner.invoke(
        app, ["verify", str(tiny_bundle_dir), "--against", str(tiny_run_dir), "--report", str(report)]
    )
    assert result.exit_code == 0, result.stderr
    assert report.is_file()


def test_verify_cli_parity_failure_exit_1(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle_dir, bundle)
    model = onnx.load(str(bundle / MODEL_FILE))
    init = next(i for i in model.graph.initializer if i.name == "head.weight")
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.1), init.name))
    onnx.save(model, str(bundle / MODEL_FILE))
    result = runner.invoke(app, ["verify", str(bundle), "--against", str(tiny_run_dir)])
    assert result.exit_code == 1
    assert "Parity check failed" in result.stderr


def test_export_cli_missing_run_dir_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2


def _odd_csv(path: Path) -> Path:
    """Labelled texts under column names the readers do not guess."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Review Body", "Star Class"])
        writer.writerows(make_corpus(12, seed=5))
    return path


FIELDS = ["--text-field", "Review Body", "--label-field", "Star Class"]


def test_verify_cli_reads_data_with_named_fields(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    data = _odd_csv(tmp_path / "odd.csv")
    args = ["verify", str(tiny_bundle_dir), "--against", str(tiny_run_dir), "--data", str(data)]
    result = runner.invoke(app, [*args, *FIELDS])
    assert result.exit_code == 0, result.stderr
    assert "accuracy on 12 labelled texts" in result.stdout


def test_verify_cli_without_fields_names_the_option(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    data = _odd_csv(tmp_path / "odd.csv")
    result = runner.invoke(app, ["verify", str(tiny_bundle_dir), "--against", str(tiny_run_dir), "--data", str(data)])
    assert result.exit_code == 1
    assert "--text-field" in result.stderr


def test_export_cli_reads_data_with_named_fields(tiny_run_dir: Path, tmp_path: Path) -> None:
    data = _odd_csv(tmp_path / "odd.csv")
    args = ["export", str(tiny_run_dir), "--out", str(tmp_path / "b"), "--data", str(data), *FIELDS]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "accuracy on 12 labelled texts" in result.stdout
