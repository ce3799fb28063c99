"""The contestants: one small class per backend, all with ``run(ids, lengths)`` on numpy inputs.

Torch is imported only by ``TorchBackend`` (so ``lstm-onnx bench`` without ``--against`` never loads it). ONNX
Runtime sessions come from ``runtime.session`` with spinning off, so an idle ORT pool never steals the core the
next contestant needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.session import ModelSession, SessionConfig, create_session, probe_cuda

__all__ = ["BACKENDS", "OrtBackend", "Skipped", "TorchBackend", "cuda_reason_ort", "cuda_reason_torch"]

# Every backend name a record can carry, in report order.
BACKENDS = ("torch", "torch-cuda", "ort-cpu", "ort-cpu-opt", "ort-cpu-int8", "ort-cuda", "ort-cuda-fp16")


@dataclass(frozen=True)
class Skipped:
    """A backend that did not run, and why."""

    backend: str
    reason: str


class OrtBackend:
    """An ONNX Runtime session on one model file.

    Args:
        name: Backend name (from ``BACKENDS``).
        model: The ``.onnx`` file.
        config: Providers, threads, optimisation level, spinning.
    """

    def __init__(self, name: str, model: Path, config: SessionConfig) -> None:
        self.name = name
        self.session: ModelSession = create_session(model, config)
        self.provider = self.session.provider
        self.threads = config.intra_op_threads

    def run(self, ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> None:
        """Compute logits (B, C) for ids int64 (B, T) and lengths int64 (B); the result is discarded."""
        self.session.run(ids, lengths)


class TorchBackend:
    """The PyTorch eager model of a run directory (inference mode), on the CPU or a CUDA device.

    Args:
        name: ``"torch"`` or ``"torch-cuda"``.
        run_dir: Training run directory.
        threads: ``torch.set_num_threads`` (CPU intra-op threads; set for the whole process).
        device: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, name: str, run_dir: Path, threads: int, device: str = "cpu") -> None:
        import torch

        from lstm_onnx.trainer.run_dir import load_run

        torch.set_num_threads(threads)
        self._torch = torch
        self.name = name
        self.provider = f"torch {device}"
        self.threads = threads
        self._device = torch.device(device)
        self._model = load_run(run_dir).model.to(self._device).eval()

    def run(self, ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> None:
        """Compute logits (B, C) for ids int64 (B, T) and lengths int64 (B); waits for the device."""
        torch = self._torch
        with torch.inference_mode():
            logits: Any = self._model(
                torch.from_numpy(ids).to(self._device), torch.from_numpy(lengths).to(self._device)
            )
            if self._device.type == "cuda":
                # The host copy is part of the work, and it waits for the kernels to finish.
                logits.cpu()


def cuda_reason_torch() -> str | None:
    """``None`` when torch can use a CUDA device, else why not (torch must be importable)."""
    import torch

    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


def cuda_reason_ort(threads: int) -> str | None:
    """``None`` when ONNX Runtime's CUDA provider really runs an LSTM here, else why not."""
    usable, reason = probe_cuda(SessionConfig(providers="cuda", intra_op_threads=threads))
    return None if usable else reason
