"""lstm-onnx trainer: labelled texts → a trained BiLSTM run directory (torch).

Public API: ``train`` and ``TrainResult`` (trainer.train), ``ModelConfig``/``TrainConfig`` (trainer.config),
``get_preset`` (trainer.presets), ``load_run`` (trainer.run_dir). They load lazily, so importing
``trainer.config`` or ``trainer.cli`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "get_preset", "load_run", "train"]

_HOMES = {
    "ModelConfig": "lstm_onnx.trainer.config",
    "TrainConfig": "lstm_onnx.trainer.config",
    "TrainResult": "lstm_onnx.trainer.train",
    "train": "lstm_onnx.trainer.train",
    "get_preset": "lstm_onnx.trainer.presets",
    "load_run": "lstm_onnx.trainer.run_dir",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lstm_onnx.trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


if __name__ != "lstm_onnx.trainer":  # a checkout on sys.path must not offer a second name
    raise ImportError(f"Import lstm_onnx.trainer, not {__name__}: this package has no other name.")
