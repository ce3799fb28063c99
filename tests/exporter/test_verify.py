"""verify_parity / verify_bundle: passes on a good export, fails loudly (naming cases) on a tampered one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from lstm_onnx.exporter.build import verify_bundle
from lstm_onnx.exporter.verify import verify_parity
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, MANIFEST_FILE, MODEL_FILE
from lstm_onnx.runtime.errors import BundleError, ParityError
from lstm_onnx.trainer.run_dir import load_run


def _tampered(bundle: Path, tmp_path: Path, shift: float = 0.01) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    model = onnx.load(str(copy / MODEL_FILE))
    for init in model.graph.initializer:
        if init.name == "head.bias":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(shift), init.name))
    onnx.save(model, str(copy / MODEL_FILE))
    return copy


def test_verify_parity_passes_on_export(tiny_bundle_dir: Path, tiny_run_dir: Path) -> None:
    report = verify_parity(tiny_bundle_dir / MODEL_FILE, load_run(tiny_run_dir))
    assert report.passed
    assert report.backends["onnxruntime-cpu"].max_abs_diff <= 1e-5
    assert report.backends["onnx-reference"].status == "passed"


def test_verify_parity_skips_cuda_without_device(tiny_bundle_dir: Path, tiny_run_dir: Path) -> None:
    report = verify_parity(tiny_bundle_dir / MODEL_FILE, load_run(tiny_run_dir))
    cuda = report.backends["onnxruntime-cuda"]
    assert cuda.status in ("skipped", "passed")
    if cuda.status == "skipped":
        assert cuda.reason.startswith("skipped")


def test_verify_parity_fails_on_tampered_weight(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    bundle = _tampered(tiny_bundle_dir, tmp_path)
    report_path = tmp_path / "report.json"
    with pytest.raises(ParityError, match=r"onnxruntime-cpu/b1_len1: max abs diff") as info:
        verify_parity(bundle / MODEL_FILE, load_run(tiny_run_dir), report_path=report_path)
    assert "onnx-reference/" in str(info.value)
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    assert any(c["case"] == "b128_mixed" and not c["passed"] for c in report["cases"])


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_verify_parity_report_of_nan_model_is_json(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    bundle = _tampered(tiny_bundle_dir, tmp_path, float("nan"))
    report_path = tmp_path / "report.json"
    with pytest.raises(ParityError, match="non-finite logits"):
        verify_parity(bundle / MODEL_FILE, load_run(tiny_run_dir), report_path=report_path)
    report = _strict_json(report_path.read_text())
    assert isinstance(report, dict) and report["passed"] is False
    assert report["backends"]["onnxruntime-cpu"]["max_abs_diff"] is None


def test_verify_bundle_fails_on_tampered_weight(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ParityError, match="Parity check failed"):
        verify_bundle(_tampered(tiny_bundle_dir, tmp_path), tiny_run_dir)


def test_verify_bundle_rejects_other_runs_bundle(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, copy)
    config = json.loads((copy / BUNDLE_CONFIG_FILE).read_text())
    config["labels"] = ["bad", "good"]
    (copy / BUNDLE_CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(BundleError, match=r"does not match run .* \['labels'\]"):
        verify_bundle(copy, tiny_run_dir)


def test_verify_bundle_missing_config(tmp_path: Path, tiny_run_dir: Path) -> None:
    with pytest.raises(BundleError, match="config.json is missing"):
        verify_bundle(tmp_path, tiny_run_dir)


def test_manifest_records_parity(tiny_bundle_dir: Path) -> None:
    parity = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text())["parity"]
    assert parity["passed"] is True
    assert parity["atol"] == 1e-5
    assert [2100, 1] not in parity["shapes_checked"]
    assert [1, 2100] in parity["shapes_checked"]
