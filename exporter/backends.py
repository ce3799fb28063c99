"""Parity backends behind one protocol: ``name``, ``available() -> (bool, reason)``, ``run(feed) -> outputs``.

Adding an engine is one class. Backends return numbers only; ``module_verify`` compares and criteria judge.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

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
    """The user's PyTorch module in eager mode: the reference every other backend is compared with.

    Args:
        model: The module (eval mode).
        names: Input names in ``forward``'s order.
    """

    name = "torch"

    def __init__(self, model: Any, names: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(names)

    def available(self) -> tuple[bool, str]:
        """Always available: the module is here."""
        return True, ""

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """Run ``forward`` under ``torch.inference_mode``."""
        import torch

        from lstm_onnx.exporter.module_inputs import flatten_outputs

        with torch.inference_mode():
            out = self.model(*(torch.from_numpy(feed[n]) for n in self.names))
        return [t.numpy() for t in flatten_outputs(out)]


class OrtBackend:
    """An ONNX Runtime session on the CPU or CUDA provider, optionally on a derived model (int8, fp16).

    Args:
        name: Backend name in reports.
        model: The ``.onnx`` file.
        provider: ``"CPUExecutionProvider"`` or ``"CUDAExecutionProvider"`` (no fallback: CUDA runs on CUDA or not).
        optimization: ORT graph optimization level.
        derive: ``None``, ``"int8"`` or ``"fp16"``: run that variant, made next to a temporary copy.
    """

    def __init__(
        self,
        name: str,
        model: Path,
        provider: str = "CPUExecutionProvider",
        optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        derive: str | None = None,
    ) -> None:
        self.name = name
        self.model = Path(model)
        self.provider = provider
        self.optimization = optimization
        self.derive = derive
        self._session: ort.InferenceSession | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def available(self) -> tuple[bool, str]:
        """CUDA needs the provider in this ORT build; the derived variants need their converters."""
        if self.provider not in ort.get_available_providers():
            return False, f"{self.provider} not in this onnxruntime build ({ort.get_available_providers()})"
        return True, ""

    def _open(self) -> ort.InferenceSession:
        if self._session is None:
            path = self.model
            if self.derive is not None:
                from lstm_onnx.exporter.variants import convert_fp16, quantize_int8

                self._tmp = tempfile.TemporaryDirectory()
                path = Path(self._tmp.name) / f"{self.derive}.onnx"
                (quantize_int8 if self.derive == "int8" else convert_fp16)(self.model, path)
            options = ort.SessionOptions()
            options.graph_optimization_level = self.optimization
            options.intra_op_num_threads = 1
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=[self.provider])
            if self._session.get_providers()[0] != self.provider:
                raise RuntimeError(f"{self.name}: session fell back to {self._session.get_providers()}")
        return self._session

    def run(self, feed: Feed) -> list[NDArray[Any]]:
        """``InferenceSession.run`` on every output (inputs the graph dropped as unused are left out)."""
        session = self._open()
        wanted = {i.name for i in session.get_inputs()}
        return [np.asarray(o) for o in session.run(None, {k: v for k, v in feed.items() if k in wanted})]


class OnnxReferenceBackend:
    """``onnx.reference.ReferenceEvaluator``: the ONNX spec's own numpy implementation (slow; short inputs only)."""

    name = "onnx-reference"

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
        OrtBackend("ort-cpu-optimized", model, optimization=ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
        OnnxReferenceBackend(model),
        OpenVinoBackend(model),
    ]
    if cuda:
        backends.insert(2, OrtBackend("ort-cuda", model, provider="CUDAExecutionProvider"))
    return backends
