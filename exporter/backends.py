"""Parity backends behind one protocol: ``name``, ``available() -> (bool, reason)``, ``run(feed) -> outputs``.

Adding an engine is one class. Backends return numbers only; ``module_verify`` compares and criteria judge.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.session import ModelSession, SessionConfig, create_session, probe_cuda

__all__ = [
    "Backend",
    "OnnxReferenceBackend",
    "OpenVinoBackend",
    "OrtBackend",
    "TorchModuleBackend",
    "default_backends",
]

Feed = dict[str, NDArray[Any]]


class Backend(Protocol):
    """One engine that computes a model's outputs."""

    name: str

    def available(self) -> tuple[bool, str]:
        """``(True, "")`` when it can run here, else ``(False, why not)``."""
        ...

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Outputs for inputs ``feed`` (name -> array), in the model's output order."""
        ...


class TorchModuleBackend:
    """A PyTorch module in eager mode: the reference every other backend is compared with (and a bench contestant).

    Args:
        model: The module (eval mode), already on ``device``.
        names: Input names in ``forward``'s order.
        name: Backend name in reports.
        device: ``"cpu"`` or ``"cuda"``: inputs are copied there, outputs back to the host (part of the work).
    """

    def __init__(self, model: Any, names: Sequence[str], name: str = "torch", device: str = "cpu") -> None:
        self.model = model
        self.names = tuple(names)
        self.name = name
        self.device = device
        self.provider = f"torch {device}"

    def available(self) -> tuple[bool, str]:
        """The CPU always is (the module is here); CUDA where torch sees a device."""
        if self.device == "cpu":
            return True, ""
        import torch

        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} sees no CUDA device"
        return True, ""

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Run ``forward`` under ``torch.inference_mode``; on CUDA the host copy waits for the kernels."""
        import torch

        from lstm_onnx.exporter.module_inputs import flatten_outputs

        with torch.inference_mode():
            out = self.model(*(torch.from_numpy(feed[n]).to(self.device) for n in self.names))
        return [t.cpu().numpy() for t in flatten_outputs(out)]


class OrtBackend:
    """An ONNX Runtime session built by ``runtime.session`` (the one place sessions are made), optionally on a
    derived model (int8, fp16) made in a temporary folder.

    Args:
        name: Backend name in reports.
        model: The ``.onnx`` file.
        config: Provider (``"cpu"`` or ``"cuda"``: no fallback, CUDA runs on CUDA or not), threads, graph
            optimization level, spinning. Default: the CPU, 1 thread, no graph optimization.
        derive: ``None``, ``"int8"`` or ``"fp16"``: run that variant of ``model``.
        batch_major: Every input and output has the batch on dimension 0 (a bundle's contract), so calls go
            through ``ModelSession.run_batch``, which cuts large batches into concurrent parts when ``config`` asks
            for it (``batch_threads``), as the runtime does. Otherwise every call runs whole (``run_all``).
    """

    def __init__(
        self,
        name: str,
        model: Path,
        config: SessionConfig | None = None,
        derive: str | None = None,
        batch_major: bool = False,
    ) -> None:
        self.name = name
        self.model = Path(model)
        # Fatal-only logging: a backend's failure at a shape is captured in its parity record, not printed by ORT.
        self.config = config or SessionConfig(providers="cpu", graph_optimization="disable", log_severity=4)
        self.derive = derive
        self.batch_major = batch_major
        self._session: ModelSession | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def available(self) -> tuple[bool, str]:
        """The CPU always is; CUDA only where ``runtime.session.probe_cuda`` runs an LSTM on the GPU."""
        if self.config.providers == "cpu":
            return True, ""
        usable, reason = probe_cuda(self.config)
        return (True, "") if usable else (False, reason)

    @property
    def provider(self) -> str:
        """The execution provider the session runs on (opens the session)."""
        return self.session.provider

    @property
    def session(self) -> ModelSession:
        """The session, built on first use."""
        if self._session is None:
            path = self.model
            if self.derive is not None:
                from lstm_onnx.exporter.variants import convert_fp16, quantize_int8

                self._tmp = tempfile.TemporaryDirectory()
                path = Path(self._tmp.name) / f"{self.derive}.onnx"
                (quantize_int8 if self.derive == "int8" else convert_fp16)(self.model, path)
            self._session = create_session(path, self.config)
        return self._session

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Every output of the graph (inputs the graph dropped as unused are left out)."""
        if not self.batch_major:
            return self.session.run_all(feed)
        graph = self.session.session
        taken = {i.name: feed[i.name] for i in graph.get_inputs() if i.name in feed}
        return self.session.run_batch(taken, [o.name for o in graph.get_outputs()])


class OnnxReferenceBackend:
    """``onnx.reference.ReferenceEvaluator``: the ONNX spec's own numpy implementation (slow; short inputs only)."""

    name = "onnx-reference"
    # The reference implementation of LSTM/GRU/RNN ignores sequence_lens (onnx 1.16-1.23).
    honours_padding = False
    # A check, not an engine to serve with: an operator it lacks is reported, not held against the export.
    servable = False

    def __init__(self, model: Path) -> None:
        self.model = Path(model)
        self._evaluator: Any = None

    def available(self) -> tuple[bool, str]:
        """Needs the ``onnx`` package (the export extra)."""
        return True, ""

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Evaluate every output."""
        if self._evaluator is None:
            from onnx.reference import ReferenceEvaluator

            self._evaluator = ReferenceEvaluator(str(self.model))
        wanted = set(self._evaluator.input_names)
        return [np.asarray(o) for o in self._evaluator.run(None, {k: v for k, v in feed.items() if k in wanted})]


class OpenVinoBackend:
    """OpenVINO's CPU runtime reading the ``.onnx`` directly (``pip install 'lstm-onnx[openvino]'``)."""

    name = "openvino-cpu"
    # OpenVINO's ONNX frontend ignores sequence_lens of LSTM/GRU nodes (2024-2026 releases).
    honours_padding = False
    servable = False

    def __init__(self, model: Path) -> None:
        self.model = Path(model)
        self._compiled: Any = None

    def available(self) -> tuple[bool, str]:
        """Needs the ``openvino`` package."""
        try:
            import openvino  # noqa: F401
        except ImportError:
            return False, "openvino is not installed (pip install 'lstm-onnx[openvino]')"
        return True, ""

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Compile once for the CPU (dynamic shapes kept), then infer."""
        if self._compiled is None:
            import openvino as ov

            core = ov.Core()
            # f32 explicitly: on CPUs with bf16 units OpenVINO would otherwise compute in bf16 by default.
            config = {"INFERENCE_PRECISION_HINT": "f32"}
            self._compiled = core.compile_model(core.read_model(str(self.model)), "CPU", config)
        wanted = {name for port in self._compiled.inputs for name in port.get_names()}
        result = self._compiled({k: v for k, v in feed.items() if k in wanted})
        return [np.asarray(result[out]) for out in self._compiled.outputs]


def default_backends(model: Path, cuda: bool = True) -> list[Backend]:
    """Every ONNX backend for an fp32 export: ORT CPU (plain and optimized), ORT CUDA, reference, OpenVINO.

    Args:
        model: The ``.onnx`` file.
        cuda: Include ORT CUDA (reported unavailable where the build lacks it).
    """
    backends: list[Backend] = [
        OrtBackend("ort-cpu", model),
        OrtBackend("ort-cpu-optimized", model, SessionConfig(providers="cpu", graph_optimization="all")),
        OnnxReferenceBackend(model),
        OpenVinoBackend(model),
    ]
    if cuda:
        backends.insert(2, OrtBackend("ort-cuda", model, SessionConfig(providers="cuda", graph_optimization="disable")))
    return backends
