"""lstm-onnx runtime: tokenization + ONNX Runtime inference, with no torch anywhere."""

from __future__ import annotations

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

__all__ = [
    "BundleError",
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
