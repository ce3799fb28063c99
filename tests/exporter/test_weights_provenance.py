"""Weights carry their digest from training to export to the card: another run's model.safetensors copied into a run
is refused by export and verify, so a card can never claim another model's accuracy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.exporter.build import export_bundles, verify_bundle
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.tagger_bundle import export_tagger_bundles
from lstm_onnx.exporter.tagger_verify import verify_tag_bundle
from lstm_onnx.runtime.bundle_format import sha256_file
from lstm_onnx.runtime.contract import MANIFEST_FILE, MODEL_CARD_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.presets import get_preset
from lstm_onnx.trainer.progress import NullProgress
from lstm_onnx.trainer.tag_cli import train_tag
from lstm_onnx.trainer.train import train
from tests.conftest import corpus_texts, make_corpus

_SWAPPED = r"model.safetensors \(sha256 [0-9a-f]{12}…\) is not the file this run trained: .*metrics.json records"


def _other_run(tmp_path: Path) -> Path:
    """A second tiny classifier run on the same corpus with another seed: other weights, other metrics."""
    preset = get_preset("tiny", epochs=2, seed=1)
    run = tmp_path / "other"
    train(corpus_texts(make_corpus()), run, preset.model, preset.train, test_data=corpus_texts(make_corpus(24, 1)))
    return run


def _swapped(run: Path, other: Path, tmp_path: Path) -> Path:
    copy = Path(shutil.copytree(run, tmp_path / "swapped"))
    shutil.copyfile(other / "model.safetensors", copy / "model.safetensors")
    return copy


def test_metrics_record_the_digest_of_the_kept_weights(tiny_run_dir: Path) -> None:
    metrics = json.loads((tiny_run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["weights_sha256"] == sha256_file(tiny_run_dir / "model.safetensors")


def test_bundle_and_card_carry_the_weights_digest(tiny_run_dir: Path, tiny_bundle_dir: Path) -> None:
    digest = sha256_file(tiny_run_dir / "model.safetensors")
    manifest = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["export"]["weights_sha256"] == digest
    assert f"sha256 `{digest[:12]}…`" in (tiny_bundle_dir / MODEL_CARD_FILE).read_text(encoding="utf-8")


def test_export_refuses_another_runs_weights(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = _swapped(tiny_run_dir, _other_run(tmp_path), tmp_path)
    with pytest.raises(BundleError, match=_SWAPPED):
        export_bundles(ExportConfig(run_dir=run, out=tmp_path / "bundle"))
    assert not (tmp_path / "bundle").exists()


def test_export_command_another_runs_weights_exit_1(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = _swapped(tiny_run_dir, _other_run(tmp_path), tmp_path)
    result = CliRunner().invoke(app, ["export", str(run), "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "is not the file this run trained" in result.stderr and result.stdout == ""


def test_verify_refuses_a_run_holding_another_runs_weights(
    tiny_run_dir: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    run = _swapped(tiny_run_dir, _other_run(tmp_path), tmp_path)
    with pytest.raises(BundleError, match=_SWAPPED):
        verify_bundle(tiny_bundle_dir, run)


def test_verify_refuses_a_bundle_of_other_weights(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    other = _other_run(tmp_path)
    with pytest.raises(BundleError, match=r"exported from weights with sha256 [0-9a-f]{12}…, but .* not this run's"):
        verify_bundle(tiny_bundle_dir, other)


def test_tagging_export_and_verify_refuse_another_runs_weights(
    tiny_tag_run_dir: Path, tiny_tag_bundle_dir: Path, tiny_tag_data: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    train_tag(tiny_tag_data, other, "tiny", {"seed": 1}, None, False, None, "upos", NullProgress())
    run = _swapped(tiny_tag_run_dir, other, tmp_path)
    with pytest.raises(BundleError, match=_SWAPPED):
        export_tagger_bundles(ExportConfig(run_dir=run, out=tmp_path / "bundle"))
    with pytest.raises(BundleError, match=_SWAPPED):
        verify_tag_bundle(tiny_tag_bundle_dir, run)
    with pytest.raises(BundleError, match="was exported from weights with sha256"):
        verify_tag_bundle(tiny_tag_bundle_dir, other)
