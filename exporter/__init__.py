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
    "BuiltBundle": "exporter.build",
    "export_bundles": "exporter.build",
    "verify_bundle": "exporter.build",
    "write_bundle": "exporter.bundle_writer",
    "ExportConfig": "exporter.config",
    "export_onnx": "exporter.export",
    "Variant": "exporter.variants",
    "ParityReport": "exporter.verify",
    "verify_parity": "exporter.verify",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'exporter' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
