"""Derived models of an fp32 export: ORT offline-optimized, dynamic int8, fp16. Each becomes its own bundle."""

from __future__ import annotations

import logging
import warnings
from enum import Enum
from pathlib import Path

import onnx
import onnxruntime as ort

from lstm_onnx.runtime.errors import ExportError, MissingDependencyError

__all__ = ["OPTIMIZATION_LEVEL", "Variant", "convert_fp16", "make_variant", "optimize", "quantize_int8"]

# EXTENDED, not ALL: ALL adds layout transformations tied to this machine's CPU (NCHWc), which would make the saved
# graph non-portable (https://onnxruntime.ai/docs/performance/model-optimizations/graph-optimizations.html).
OPTIMIZATION_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
OPTIMIZATION_LEVEL_NAME = "ORT_ENABLE_EXTENDED"


class Variant(str, Enum):
    """Which model a bundle holds."""

    FP32 = "fp32"
    OPTIMIZED = "optimized"
    INT8 = "int8"
    FP16 = "fp16"


def optimize(src: Path, dst: Path) -> None:
    """Save ORT's offline graph optimization of ``src`` (level ``ORT_ENABLE_EXTENDED``, CPU provider) to ``dst``.

    The result may hold ``com.microsoft`` fused ops: it is meant for ONNX Runtime only.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMIZATION_LEVEL
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
    if not Path(dst).is_file():
        raise ExportError(f"ONNX Runtime did not write the optimized model to {dst}.")


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization for ORT CPU: int8 weights, activations quantized per batch at run time.

    Raises:
        ExportError: The LSTM was left in float (no ``DynamicQuantizeLSTM`` node, or a float ``LSTM`` remains).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer advises pre-processing through the root logger (shape inference for MatMul-heavy graphs; our
    # graph is fully shaped already). Quiet it for this call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            # ORT's DynamicQuantizeLSTM takes signed int8 weights only.
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["LSTM", "MatMul", "Gemm", "Gather"],
        )
    finally:
        root.setLevel(level)
    ops = [node.op_type for node in onnx.load(str(dst)).graph.node]
    if "DynamicQuantizeLSTM" not in ops or "LSTM" in ops:
        raise ExportError(
            f"int8 quantization left the LSTM in float (ops: {sorted(set(ops))}); expected DynamicQuantizeLSTM. "
            f"Check the onnxruntime version ({ort.__version__}) supports LSTM dynamic quantization."
        )


def convert_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and activations, float32 ``logits`` kept (``keep_io_types``); int64 inputs are unchanged.

    Raises:
        MissingDependencyError: onnxruntime's transformers tools are missing.
    """
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as err:
        raise MissingDependencyError(
            "fp16 conversion needs onnxruntime's transformers tools: pip install onnxruntime."
        ) from err
    with warnings.catch_warnings():
        # It warns about values clamped to the fp16 range; the parity check measures their effect instead.
        warnings.filterwarnings("ignore", category=UserWarning)
        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))


def make_variant(variant: Variant, src: Path, dst: Path) -> None:
    """Write ``variant`` of the fp32 model ``src`` to ``dst`` (fp32: a no-op, never called)."""
    if variant is Variant.OPTIMIZED:
        optimize(src, dst)
    elif variant is Variant.INT8:
        quantize_int8(src, dst)
    elif variant is Variant.FP16:
        convert_fp16(src, dst)
    else:
        raise ExportError(f"Variant {variant.value!r} is not derived from an fp32 model.")
