"""Bundles: files and checksums, atomic writes, --force, clear errors for broken run directories, variants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from lstm_onnx.exporter.build import export_bundles
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.variants import Variant
from lstm_onnx.runtime.bundle_format import file_digest
from lstm_onnx.runtime.contract import (
    BUNDLE_CONFIG_FILE,
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    TOKENIZER_RULES_FILE,
    VOCAB_FILE,
)
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.run_dir import WEIGHTS_FILE


def test_bundle_has_every_file_with_checksums(tiny_bundle_dir: Path) -> None:
    manifest = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text())
    expected = {MODEL_FILE, VOCAB_FILE, BUNDLE_CONFIG_FILE, TOKENIZER_RULES_FILE, MODEL_CARD_FILE}
    assert set(manifest["files"]) == expected
    for name, entry in manifest["files"].items():
        assert entry == file_digest(tiny_bundle_dir / name)
    assert {p.name for p in tiny_bundle_dir.iterdir()} == expected | {MANIFEST_FILE}


def test_bundle_manifest_schema(tiny_bundle_dir: Path) -> None:
    manifest = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text())
    assert manifest["format_version"] == 1
    assert manifest["created_at"].endswith("Z")
    assert set(manifest["versions"]) == {"toolkit", "python", "torch", "onnx", "onnxruntime"}
    assert manifest["export"]["variant"] == "fp32"
    assert json.loads((tiny_bundle_dir / BUNDLE_CONFIG_FILE).read_text())["variant"] == "fp32"


def test_export_refuses_existing_bundle_without_force(tiny_run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BundleError, match="already exists; pass --force"):
        export_bundles(ExportConfig(run_dir=tiny_run_dir, out=out))
    assert (out / "keep.txt").read_text() == "mine"


def test_export_force_replaces_and_leaves_no_temporaries(tiny_run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    export_bundles(ExportConfig(run_dir=tiny_run_dir, out=out, force=True))
    assert (out / MANIFEST_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize(
    ("broken", "message"),
    [("weights", "model.safetensors is missing"), ("config", "not a valid run config"), ("vocab", "has 3 tokens")],
)
def test_export_broken_run_dir_is_bundle_error(tiny_run_dir: Path, tmp_path: Path, broken: str, message: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    if broken == "weights":
        (run / WEIGHTS_FILE).unlink()
    elif broken == "config":
        (run / "config.json").write_text("{not json")
    else:
        (run / VOCAB_FILE).write_text("<pad>\n<unk>\nthe\n")
    with pytest.raises(BundleError, match=message):
        export_bundles(ExportConfig(run_dir=run, out=tmp_path / "bundle"))
    assert not (tmp_path / "bundle").exists()


def test_export_int8_bundle_has_quantized_lstm(tiny_run_dir: Path, tmp_path: Path) -> None:
    config = ExportConfig(run_dir=tiny_run_dir, out=tmp_path / "b", variants=(Variant.INT8,))
    built = export_bundles(config)
    assert [b.path.name for b in built] == ["b", "b-int8"]
    ops = {node.op_type for node in onnx.load(str(tmp_path / "b-int8" / MODEL_FILE)).graph.node}
    assert "DynamicQuantizeLSTM" in ops
    assert "LSTM" not in ops
    manifest = json.loads((tmp_path / "b-int8" / MANIFEST_FILE).read_text())
    assert manifest["export"]["variant"] == "int8"
    assert manifest["parity"]["backends"]["onnxruntime-cpu"]["label_agreement"] >= 0.99


@pytest.mark.parametrize("variant", [Variant.OPTIMIZED, Variant.FP16])
def test_export_variant_bundle_verified(tiny_run_dir: Path, tmp_path: Path, variant: Variant) -> None:
    built = export_bundles(ExportConfig(run_dir=tiny_run_dir, out=tmp_path / "b", variants=(variant,)))
    assert built[-1].path == tmp_path / f"b-{variant.value}"
    assert built[-1].report.passed


def test_export_from_a_bundle_instead_of_a_run_dir_says_so(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is a model bundle"):
        export_bundles(ExportConfig(run_dir=tiny_bundle_dir, out=tmp_path / "bundle"))
    assert not (tmp_path / "bundle").exists()
