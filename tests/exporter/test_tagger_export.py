"""Tagger export: TAG_IO graph, parity on valid positions, padding invariance, variants, bundle contents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.export import check_graph
from lstm_onnx.exporter.tagger_bundle import export_tagger_bundles
from lstm_onnx.exporter.variants import Variant
from lstm_onnx.runtime.contract import TAG_IO
from lstm_onnx.runtime.errors import BundleError, ExportError


def test_tag_bundle_manifest_and_config(tiny_tag_bundle_dir: Path) -> None:
    manifest = json.loads((tiny_tag_bundle_dir / "manifest.json").read_text())
    config = json.loads((tiny_tag_bundle_dir / "config.json").read_text())
    assert config["task"] == "tag" and config["tagset"] == "upos"
    assert manifest["io"] == TAG_IO.to_manifest(5)
    assert "chars.txt" in manifest["files"]
    parity = manifest["parity"]
    assert parity["passed"] and parity["tag_agreement"] == 1.0
    assert parity["max_abs_diff"] < 1e-5 and parity["padding_max_diff"] < 1e-5
    assert parity["accuracy"] == parity["torch_accuracy"]


def test_tag_graph_dynamic_axes(tiny_tag_bundle_dir: Path) -> None:
    model = onnx.load(str(tiny_tag_bundle_dir / "model.onnx"))
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["batch_size", "sequence_length", 5]
    check_graph(model, num_labels=5, num_layers=1, spec=TAG_IO)
    with pytest.raises(ExportError, match="Graph outputs"):
        check_graph(model, num_labels=6, num_layers=1, spec=TAG_IO)


def test_tag_export_variants(tiny_tag_run_dir: Path, tiny_tag_data: Path, tmp_path: Path) -> None:
    built = export_tagger_bundles(
        ExportConfig(
            run_dir=tiny_tag_run_dir, out=tmp_path / "b", variants=(Variant.INT8, Variant.FP16), data=tiny_tag_data
        )
    )
    assert [b.variant for b in built] == [Variant.FP32, Variant.INT8, Variant.FP16]
    for b in built[1:]:
        assert b.parity.tag_agreement >= 0.99 and abs(b.parity.accuracy_delta_points or 0.0) <= 0.3
    ops = {n.op_type for n in onnx.load(str(tmp_path / "b-int8" / "model.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops


def test_tag_export_refuses_existing(tiny_tag_run_dir: Path, tiny_tag_bundle_dir: Path) -> None:
    with pytest.raises(BundleError, match="already exists"):
        export_tagger_bundles(ExportConfig(run_dir=tiny_tag_run_dir, out=tiny_tag_bundle_dir))


def test_tag_onnx_alone_equals_padded_batch(tiny_tag_bundle_dir: Path) -> None:
    from lstm_onnx.runtime.tagger import TokenTagger

    tagger = TokenTagger.load(tiny_tag_bundle_dir, providers="cpu")
    short = ["A", "dog"]
    batch = tagger.logits([short, ["The", "big", "old", "cat", "watches", "a", "supercalifragilistic", "tree", "."]])
    alone = tagger.logits([short])
    np.testing.assert_allclose(alone[0], batch[0, :2], atol=1e-5, rtol=0)
