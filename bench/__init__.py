"""lstm-onnx bench: PyTorch eager against ONNX Runtime (fp32, optimized, int8; CUDA where present).

Model-only throughput and latency on real and fixed-length batches, end to end through the predictor, start-up
in fresh processes, and the LSTM's FLOP rate against numpy's matmul. Torch loads only for ``--against``. The
backends are the exporter's parity backends (``lstm_onnx.exporter.backends``): what is timed is what was verified.

The public names load lazily: the root CLI imports ``bench.cli``, and ``--help`` must not load onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BenchConfig", "bench"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'lstm_onnx.bench' has no attribute {name!r}")
    return getattr(importlib.import_module("lstm_onnx.bench.suite"), name)


if __name__ != "lstm_onnx.bench":  # a checkout on sys.path must not offer a second name
    raise ImportError(f"Import lstm_onnx.bench, not {__name__}: this package has no other name.")
