"""lstm-onnx runtime: tokenization + ONNX Runtime inference, with no torch anywhere.

``TextClassifier``, ``Prediction``, ``load_bundle`` and ``SessionConfig`` load onnxruntime, so they are imported on
first access: the trainer imports ``runtime.tokenizer`` without paying for onnxruntime.

    >>> from lstm_onnx.runtime import TextClassifier
    >>> model = TextClassifier.load("bundles/sentiment-bilstm")
    >>> model.predict(["A moving, beautifully acted film."])[0].label
"""

from __future__ import annotations

import importlib
from typing import Any

from lstm_onnx.runtime.errors import (
    BundleError,
    ConfigError,
    DataError,
    EmptyInputError,
    ExportError,
    InputError,
    InputTooLongError,
    LabelError,
    MissingDependencyError,
    NonFiniteOutputError,
    ParityError,
    ProviderError,
    ToolkitError,
    TrainingError,
    WriteError,
)
from lstm_onnx.runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab, batch_encode, normalize

_LAZY = {
    "TextClassifier": "lstm_onnx.runtime.predictor",
    "Prediction": "lstm_onnx.runtime.predictor",
    "TokenTagger": "lstm_onnx.runtime.tagger",
    "TaggedSentence": "lstm_onnx.runtime.tagger",
    "load": "lstm_onnx.runtime.load",
    "resolve_bundle": "lstm_onnx.runtime.load",
    "load_bundle": "lstm_onnx.runtime.bundle",
    "Bundle": "lstm_onnx.runtime.bundle",
    "Manifest": "lstm_onnx.runtime.bundle",
    "SessionConfig": "lstm_onnx.runtime.session",
    "BatchPredictor": "lstm_onnx.runtime.batch_predictor",
}


def __getattr__(name: str) -> Any:
    """Import the onnxruntime-backed names on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstm_onnx.runtime' has no attribute {name!r}")


__all__ = [
    "BatchPredictor",
    "Bundle",
    "BundleError",
    "ConfigError",
    "DataError",
    "EmptyInputError",
    "ExportError",
    "InputError",
    "InputTooLongError",
    "LabelError",
    "Manifest",
    "MissingDependencyError",
    "NonFiniteOutputError",
    "ParityError",
    "Prediction",
    "ProviderError",
    "SessionConfig",
    "TaggedSentence",
    "TextClassifier",
    "TokenTagger",
    "Tokenizer",
    "TokenizerConfig",
    "ToolkitError",
    "TrainingError",
    "Vocab",
    "WriteError",
    "batch_encode",
    "load",
    "load_bundle",
    "normalize",
    "resolve_bundle",
]

if __name__ != "lstm_onnx.runtime":  # a checkout on sys.path must not offer a second name
    raise ImportError(f"Import lstm_onnx.runtime, not {__name__}: this package has no other name.")
