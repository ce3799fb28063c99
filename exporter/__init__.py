"""lstm-onnx exporter: trained run → ONNX model bundle with proven parity (torch + onnx).

The public names load lazily: ``exporter.cli`` is imported by the root CLI, which must not load torch for
``--help``, ``predict`` or ``info``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BuiltBundle",
    "ExportConfig",
    "ParityReport",
    "Variant",
    "export_bundles",
    "export_onnx",
    "verify_bundle",
    "verify_parity",
    "write_bundle",
]

_HOMES = {
    "BuiltBundle": "lstm_onnx.exporter.build",
    "export_bundles": "lstm_onnx.exporter.build",
    "verify_bundle": "lstm_onnx.exporter.build",
    "write_bundle": "lstm_onnx.exporter.bundle_writer",
    "ExportConfig": "lstm_onnx.exporter.config",
    "export_onnx": "lstm_onnx.exporter.export",
    "Variant": "lstm_onnx.exporter.variants",
    "ParityReport": "lstm_onnx.exporter.verify",
    "verify_parity": "lstm_onnx.exporter.verify",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lstm_onnx.exporter' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


if __name__ != "lstm_onnx.exporter":  # a checkout on sys.path must not offer a second name
    raise ImportError(f"Import lstm_onnx.exporter, not {__name__}: this package has no other name.")
