"""The PyTorch peers of the benchmark: packed eager (``BiLSTMClassifier.forward``), the masked twin in eager mode
(``trainer.unpacked.forward_unpacked``: padding masked instead of packed) and ``torch.compile`` on the masked twin.

Packed eager is the slowest way to run the model in PyTorch; the masked twin and its compiled form are what a
user who only wants speed from PyTorch would run, so every ratio is stated against each. Torch is imported only
here (``lstm-onnx bench`` without ``--against`` never loads it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lstm_onnx.exporter.backends import TorchModuleBackend
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

__all__ = ["COMPILE_WARM_SHAPES", "TORCH_PEERS", "CompiledTorchBackend", "masked_twin", "torch_peer"]

# Backend name -> how the model runs: eager packed, eager masked twin, compiled masked twin.
TORCH_PEERS = ("torch", "torch-masked", "torch-compiled")

# Shapes compiled before timing starts: torch.compile specializes sizes 0 and 1, so batch 1 and length 1 get
# their own graphs; any other (B, T) runs the dynamic-shape graph compiled from the first general shape.
COMPILE_WARM_SHAPES = ((2, 3), (1, 3), (2, 1), (1, 1), (3, 5))


def masked_twin(model: Any) -> Any:
    """An ``nn.Module`` whose ``forward(ids, lengths)`` is ``forward_unpacked(model, ids, lengths)`` (eval mode).

    Args:
        model: A ``BiLSTMClassifier`` in eval mode.
    """
    from torch import nn

    from lstm_onnx.trainer.unpacked import forward_unpacked

    class MaskedTwin(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, lengths: Any) -> Any:
            return forward_unpacked(self.inner, ids, lengths)

    return MaskedTwin(model).eval()


class CompiledTorchBackend(TorchModuleBackend):
    """``torch.compile`` (dynamic shapes) on the masked twin; compiled for every shape class before timing.

    Args:
        model: A ``BiLSTMClassifier`` in eval mode, already on ``device``.
        name: Backend name in reports.
        device: ``"cpu"`` or ``"cuda"`` (inputs are copied there, outputs back to the host).
        backend: ``torch.compile``'s backend: ``"inductor"`` (generated kernels), or ``"eager"`` (Dynamo's
            graph capture only, for smoke runs where code generation would take most of the time).

    Attributes:
        compile_s: Seconds spent compiling (excluded from every timed figure).
        graphs: Graphs compiled during warm-up; ``recompiles()`` tells how many more came after it.
    """

    def __init__(
        self, model: Any, name: str = "torch-compiled", device: str = "cpu", backend: str = "inductor"
    ) -> None:
        import numpy as np
        import torch
        import torch._dynamo

        # Dynamo refuses RNN modules by default; the masked twin calls torch.lstm per layer and direction.
        torch._dynamo.config.allow_rnn = True
        compiled = torch.compile(masked_twin(model), dynamic=True, backend=backend)
        super().__init__(compiled, (INPUT_IDS, LENGTHS), name=name, device=device)
        self.provider = f"torch {device} (torch.compile, {backend})"
        started = time.perf_counter()
        for batch, steps in COMPILE_WARM_SHAPES:
            ids = np.ones((batch, steps), dtype=np.int64)
            self.run({INPUT_IDS: ids, LENGTHS: np.full(batch, steps, dtype=np.int64)})
        self.compile_s = time.perf_counter() - started
        self.graphs = self._unique_graphs()

    @staticmethod
    def _unique_graphs() -> int:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])

    def recompiles(self) -> int:
        """Graphs compiled since warm-up (0 when timing never paid for compilation)."""
        return self._unique_graphs() - self.graphs


def torch_peer(name: str, run_dir: Path, threads: int) -> TorchModuleBackend:
    """One of ``TORCH_PEERS`` on the CPU for a training run directory.

    Args:
        name: ``"torch"``, ``"torch-masked"`` or ``"torch-compiled"``.
        run_dir: Training run directory (``load_run``).
        threads: ``torch.set_num_threads`` (set for the whole process).

    Raises:
        ValueError: Unknown name.
    """
    import torch

    from lstm_onnx.trainer.run_dir import load_run

    if name not in TORCH_PEERS:
        raise ValueError(f"unknown PyTorch peer {name!r}; expected one of {', '.join(TORCH_PEERS)}.")
    torch.set_num_threads(threads)
    model = load_run(run_dir).model.eval()
    if name == "torch":
        return TorchModuleBackend(model, (INPUT_IDS, LENGTHS), name=name)
    if name == "torch-masked":
        return TorchModuleBackend(masked_twin(model), (INPUT_IDS, LENGTHS), name=name)
    return CompiledTorchBackend(model, name=name)
