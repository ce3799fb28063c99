"""Nothing of the building machine leaks into a run's config, a bundle or its card: data is named, not located."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import make_corpus


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built_from_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny run trained from JSONL files and its bundle, verified against a JSONL file: (root, run, bundle)."""
    from lstm_onnx.exporter.build import export_bundles
    from lstm_onnx.exporter.config import ExportConfig
    from lstm_onnx.runtime.datasets import read_dataset
    from lstm_onnx.trainer.presets import get_preset
    from lstm_onnx.trainer.train import train

    root = tmp_path_factory.mktemp("machine_paths")
    train_file = _write_jsonl(root / "train.jsonl", make_corpus())
    test_file = _write_jsonl(root / "test.jsonl", make_corpus(24, seed=1))
    preset = get_preset("tiny", seed=0)
    run_dir = root / "run"
    train(read_dataset(train_file), run_dir, preset.model, preset.train, test_data=read_dataset(test_file))
    bundle = root / "bundle"
    export_bundles(ExportConfig(run_dir=run_dir, out=bundle, data=test_file))
    return root, run_dir, bundle


def _machine_paths(root: Path) -> list[str]:
    paths = {str(root), str(root.resolve()), str(Path.home()), os.getcwd(), str(Path(__file__).resolve().parent)}
    return sorted(p for p in paths if len(p) > 1)


def test_bundle_files_hold_no_machine_path(built_from_files: tuple[Path, Path, Path]) -> None:
    root, _, bundle = built_from_files
    files = sorted(bundle.iterdir())
    assert {f.name for f in files} >= {"model.onnx", "manifest.json", "README.md", "config.json"}
    for file in files:
        content = file.read_bytes()
        for path in _machine_paths(root):
            assert path.encode() not in content, f"{file.name} holds {path}"


def test_run_config_holds_no_machine_path(built_from_files: tuple[Path, Path, Path]) -> None:
    root, run_dir, _ = built_from_files
    text = (run_dir / "config.json").read_text(encoding="utf-8")
    for path in _machine_paths(root):
        assert path not in text


def test_data_recorded_by_name_and_digest(built_from_files: tuple[Path, Path, Path]) -> None:
    from lstm_onnx.runtime.bundle import sha256_file

    root, run_dir, bundle = built_from_files
    data = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["data"]
    assert data["train"]["name"] == "train.jsonl"
    assert data["train"]["sha256"] == sha256_file(root / "train.jsonl")
    assert data["test"]["name"] == "test.jsonl"
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data"]["train"]["sha256"] == sha256_file(root / "train.jsonl")
    assert manifest["metrics"]["verify_data"]["source"]["sha256"] == sha256_file(root / "test.jsonl")


def test_verify_accepts_a_moved_zipped_bundle(built_from_files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Built at one path, moved, zipped, verified from elsewhere against its run: parity holds."""
    import shutil
    import zipfile

    from typer.testing import CliRunner

    from lstm_onnx.cli import app

    _, run_dir, bundle = built_from_files
    moved = Path(shutil.copytree(bundle, tmp_path / "moved"))
    archive = tmp_path / "elsewhere" / "bundle.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(moved.iterdir()):
            zf.write(file, f"moved/{file.name}")
    shutil.rmtree(moved)
    result = CliRunner().invoke(app, ["verify", str(archive), "--against", str(run_dir)])
    assert result.exit_code == 0, result.stderr
    assert "passed" in result.stdout.lower()
