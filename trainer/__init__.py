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
    "ModelConfig": "trainer.config",
    "TrainConfig": "trainer.config",
    "TrainResult": "trainer.train",
    "train": "trainer.train",
    "get_preset": "trainer.presets",
    "load_run": "trainer.run_dir",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
