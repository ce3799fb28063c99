"""write_bundle: model + vocab + config + tokenizer rules + model card + manifest, written atomically."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch

from lstm_onnx import __version__
from lstm_onnx.exporter.config import BUNDLE_NAME
from lstm_onnx.exporter.export import EXPORTER_REASON, ExportInfo
from lstm_onnx.runtime.atomic import replace_directory
from lstm_onnx.runtime.bundle import Manifest, sha256_file
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.contract import (
    BATCH_AXIS,
    BUNDLE_CONFIG_FILE,
    BUNDLE_FORMAT_VERSION,
    INPUT_IDS,
    LENGTHS,
    LOGITS,
    MANIFEST_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    SEQUENCE_AXIS,
    TOKENIZER_RULES_FILE,
    VOCAB_FILE,
)
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, save_rules
from lstm_onnx.trainer.run_dir import LoadedRun

__all__ = ["check_target", "file_digest", "write_bundle"]


def check_target(out: Path, force: bool) -> None:
    """Refuse to replace an existing ``out`` unless ``force``.

    Raises:
        BundleError: ``out`` exists and ``force`` is False, or ``out`` is a file.
    """
    if out.is_file():
        raise BundleError(f"{out} is a file; give a directory path for the bundle.")
    if out.exists() and not force:
        raise BundleError(f"Bundle {out} already exists; pass --force to replace it, or choose another --out.")


def file_digest(path: Path) -> dict[str, Any]:
    """``{"sha256": hex, "bytes": int}`` of one file."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _versions() -> dict[str, str]:
    return {
        "toolkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _recorded_data(run: LoadedRun) -> dict[str, Any] | None:
    """The run's data record; runs from before records carried paths keep only the file or folder names."""
    data = run.config.get("data")
    if not isinstance(data, dict):
        return None
    return {
        key: {"name": Path(value.split(" (")[0]).name} if isinstance(value, str) and key in ("train", "test") else value
        for key, value in data.items()
    }


def write_bundle(
    out: Path,
    *,
    model_path: Path,
    run: LoadedRun,
    run_dir: Path,
    info: ExportInfo,
    variant: str,
    parity: dict[str, Any],
    metrics: dict[str, Any],
    version: str,
    force: bool,
) -> Path:
    """Write a bundle directory into a temporary directory beside ``out``, then rename it into place.

    An interrupted write leaves ``out`` untouched (no half-written bundle).

    Args:
        out: Target bundle directory.
        model_path: The verified ONNX graph to ship.
        run: The loaded run (labels, configs, metrics).
        run_dir: Its directory (``vocab.txt`` is copied byte for byte).
        info: Export settings.
        variant: ``fp32``, ``optimized``, ``int8`` or ``fp16``.
        parity: ``ParityReport.summary()``.
        metrics: The manifest's ``metrics`` block.
        version: Semantic version of the bundle.
        force: Replace an existing ``out``.

    Returns:
        ``out``.

    Raises:
        BundleError: ``out`` exists without ``force``.
    """
    out = Path(out)
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    staging.chmod(0o755)  # mkdtemp makes it 0700; a bundle is meant to be read by the serving user too
    try:
        shutil.copyfile(model_path, staging / MODEL_FILE)
        shutil.copyfile(run_dir / VOCAB_FILE, staging / VOCAB_FILE)
        config = {
            "labels": run.labels,
            "tokenizer": run.tokenizer_config.to_dict(),
            "model": run.model_config.to_dict(),
            "vocab_size": len(run.vocab),
            "variant": variant,
        }
        (staging / BUNDLE_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_rules(dump_spacy_rules(), staging / TOKENIZER_RULES_FILE)
        manifest = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "name": BUNDLE_NAME,
            "version": version,
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "versions": _versions(),
            "export": {
                "opset": info.opset,
                "exporter_mode": info.exporter_mode,
                "exporter_reason": EXPORTER_REASON,
                "example_shape": list(info.example_shape),
                "variant": variant,
            },
            "io": {
                "inputs": [
                    {"name": INPUT_IDS, "dtype": "int64", "shape": [BATCH_AXIS, SEQUENCE_AXIS]},
                    {"name": LENGTHS, "dtype": "int64", "shape": [BATCH_AXIS]},
                ],
                "outputs": [{"name": LOGITS, "dtype": "float32", "shape": [BATCH_AXIS, run.model_config.num_labels]}],
            },
            "parity": parity,
            "metrics": metrics,
            "data": _recorded_data(run),
        }
        card = render_card(Manifest.from_dict({**manifest, "files": {}}, staging / MANIFEST_FILE), config, out.name)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        manifest["files"] = {p.name: file_digest(p) for p in sorted(staging.iterdir())}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
