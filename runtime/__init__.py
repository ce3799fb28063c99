"""lstm-onnx runtime: tokenization + ONNX Runtime inference, with no torch anywhere.

``SentimentModel``, ``Prediction``, ``load_bundle`` and ``SessionConfig`` load onnxruntime, so they are imported on
first access: the trainer imports ``runtime.tokenizer`` without paying for onnxruntime.

    >>> from runtime import SentimentModel
    >>> model = SentimentModel.load("bundles/sentiment-bilstm")
    >>> model.predict(["A moving, beautifully acted film."])[0].label
"""

from __future__ import annotations

import importlib
from typing import Any

from runtime.errors import (
    BundleError,
    DataError,
    EmptyInputError,
    ExportError,
    InputError,
    InputTooLongError,
    MissingDependencyError,
    ParityError,
    ProviderError,
    ToolkitError,
)
from runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab, batch_encode, normalize

_LAZY = {
    "SentimentModel": "runtime.predictor",
    "Prediction": "runtime.predictor",
    "load_bundle": "runtime.bundle",
    "Bundle": "runtime.bundle",
    "Manifest": "runtime.bundle",
    "SessionConfig": "runtime.session",
}


def __getattr__(name: str) -> Any:
    """Import the onnxruntime-backed names on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


__all__ = [
    "Bundle",
    "BundleError",
    "Manifest",
    "Prediction",
    "SentimentModel",
    "SessionConfig",
    "load_bundle",
    "DataError",
    "EmptyInputError",
    "ExportError",
    "InputError",
    "InputTooLongError",
    "MissingDependencyError",
    "ParityError",
    "ProviderError",
    "Tokenizer",
    "TokenizerConfig",
    "ToolkitError",
    "Vocab",
    "batch_encode",
    "normalize",
]
