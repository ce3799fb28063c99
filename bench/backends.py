"""The contestants: the exporter's parity backends (``exporter.backends``), fed the classifier's two inputs.

Torch is imported only by the PyTorch backend (so ``lstm-onnx bench`` without ``--against`` never loads it). ONNX
Runtime sessions come from ``runtime.session`` with spinning off, so an idle ORT pool never steals the core the
next contestant needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.exporter.backends import OrtBackend, TorchModuleBackend
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

__all__ = ["BACKENDS", "Contestant", "Skipped", "feed", "torch_backend"]

# Every backend name a record can carry, in report order.
BACKENDS = (
    "torch",
    "torch-masked",
    "torch-compiled",
    "torch-cuda",
    "ort-cpu",
    "ort-cpu-opt",
    "ort-cpu-int8",
    "ort-cpu-parts",
    "ort-cpu-int8-parts",
    "ort-cuda",
    "ort-cuda-fp16",
)

Contestant = OrtBackend | TorchModuleBackend


@dataclass(frozen=True)
class Skipped:
    """A backend that did not run, and why."""

    backend: str
    reason: str


def feed(ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> dict[str, NDArray[np.int64]]:
    """The classifier's inputs by name: ids int64 (B, T) and lengths int64 (B)."""
    return {INPUT_IDS: ids, LENGTHS: lengths}


def torch_backend(name: str, run_dir: Path, threads: int, device: str = "cpu") -> TorchModuleBackend | Skipped:
    """The PyTorch eager model of a run directory (inference mode) on the CPU or a CUDA device, or why not.

    Args:
        name: ``"torch"`` or ``"torch-cuda"``.
        run_dir: Training run directory.
        threads: ``torch.set_num_threads`` (CPU intra-op threads; set for the whole process).
        device: ``"cpu"`` or ``"cuda"``.
    """
    import torch

    from lstm_onnx.trainer.run_dir import load_run

    backend = TorchModuleBackend(None, (INPUT_IDS, LENGTHS), name=name, device=device)
    usable, reason = backend.available()
    if not usable:
        return Skipped(name, reason)
    torch.set_num_threads(threads)
    backend.model = load_run(run_dir).model.to(device).eval()
    return backend
