"""lstm-onnx: BiLSTM/GRU models from PyTorch training to torch-free ONNX Runtime inference, parity proven.

The app-facing API is one import::

    >>> import lstm_onnx
    >>> model = lstm_onnx.load("bundles/sentiment-bilstm")   # a bundle directory, .zip/.tar.gz, or installed name
    >>> model.predict(["A moving, beautifully acted film."])[0].label

Subpackages: ``lstm_onnx.runtime`` (numpy + onnxruntime only), ``lstm_onnx.trainer`` (torch),
``lstm_onnx.exporter`` (torch + onnx). Importing this package loads none of them until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from lstm_onnx.runtime.load import load as load

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    """Import ``load`` (and through it onnxruntime) on first use, so ``import lstm_onnx`` stays instant."""
    if name == "load":
        return importlib.import_module("lstm_onnx.runtime.load").load
    raise AttributeError(f"module 'lstm_onnx' has no attribute {name!r}")
