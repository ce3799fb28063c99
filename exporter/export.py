"""export_onnx: a trained ``BiLSTMClassifier`` → ``model.onnx`` with dynamic batch and sequence axes, checked.

Every export goes through the module exporter (``exporter.module_export.export_module``: TorchScript,
``dynamo=False``, its refusals and its graph and second-shape checks). What it exports here is the classifier's
export twin, ``OnnxExportClassifier`` (exporter/onnx_module.py), a ``LoweredRNN`` whose forward emits one ONNX
``LSTM`` node per layer with ``sequence_lens`` itself; ``check_graph`` then holds the graph to ``CLASSIFY_IO``.

Why the twin and not the trained model's own forward: exported through ``export_module`` that forward gives the
same parity (max |diff| vs torch 9.3e-8 on a 128-dim run, lengths 1-2,000) but a larger, slower graph: 70 nodes
against the twin's 51 (one layer; 101 vs 75 with two layers and three poolings: the packed-sequence stand-in adds
Cast/Where/Not/Range masking), 3.7-7.6 % slower on ONNX Runtime CPU (1 thread, medians of 40 alternating runs at
1 x 64 and 32 x 256). The twin's forward takes ``input_ids, lengths``: ``export_module`` names the graph inputs
after them, as ``CLASSIFY_IO`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from lstm_onnx.exporter.module_export import DEFAULT_OPSET, FORBIDDEN_OPS, MIN_OPSET, check_opset, export_module
from lstm_onnx.exporter.module_inputs import forward_names
from lstm_onnx.exporter.onnx_module import OnnxExportClassifier
from lstm_onnx.exporter.rnn_nodes import LoweredRNN
from lstm_onnx.runtime.contract import CLASSIFY_IO, IOSpec
from lstm_onnx.runtime.errors import ExportError
from lstm_onnx.trainer.model import BiLSTMClassifier

__all__ = [
    "DEFAULT_OPSET",
    "EXAMPLE_SHAPE",
    "EXPORTER_MODE",
    "EXPORTER_REASON",
    "MIN_OPSET",
    "ExportInfo",
    "check_graph",
    "check_opset",
    "export_onnx",
    "export_twin",
]

EXPORTER_MODE = "torchscript"
EXPORTER_REASON = (
    "TorchScript symbolic emits one ONNX LSTM per layer with sequence_lens; dynamo cannot trace "
    "pack_padded_sequence (pytorch#112044) and tracing the packed model loses the lengths (pytorch#48460, #62240)."
)
# Batch 2 x 16 tokens: deliberately unlike most verification shapes, which then prove the axes are dynamic.
EXAMPLE_SHAPE = (2, 16)


@dataclass(frozen=True)
class ExportInfo:
    """How a model was exported (recorded in the manifest's ``export`` block).

    Attributes:
        opset: ONNX default-domain opset.
        exporter_mode: ``"torchscript"`` (the only path; see module docstring).
        example_shape: (B, T) of the example input traced.
    """

    opset: int
    exporter_mode: str
    example_shape: tuple[int, int]


def export_onnx(model: BiLSTMClassifier, path: Path, *, opset: int = DEFAULT_OPSET, seed: int = 0) -> ExportInfo:
    """Export ``model`` to ``path`` and check the graph.

    Args:
        model: Trained classifier (eval mode; not modified).
        path: Target ``.onnx`` file (written in place; callers write into a temporary directory).
        opset: ONNX opset, >= ``MIN_OPSET``.
        seed: Seeds the example input's token ids.

    Returns:
        The export settings used.

    Raises:
        ExportError: The opset is unsupported, torch.onnx fails, or the graph fails ``check_graph``.
    """
    check_opset(opset)
    config = model.config
    module = OnnxExportClassifier(model)
    batch, steps = EXAMPLE_SHAPE
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, config.vocab_size, (batch, steps), generator=generator)
    lengths = torch.tensor([steps, steps // 2 + 1], dtype=torch.int64)
    ids[1, int(lengths[1]) :] = 0
    export_twin(module, (ids, lengths), path, opset=opset, spec=CLASSIFY_IO, num_labels=config.num_labels)
    return ExportInfo(opset=opset, exporter_mode=EXPORTER_MODE, example_shape=(batch, steps))


def export_twin(
    module: LoweredRNN, example: Sequence[torch.Tensor], path: Path, *, opset: int, spec: IOSpec, num_labels: int
) -> None:
    """Export an export twin (classifier or tagger) through ``export_module`` in ``spec``'s IO contract, then hold
    the graph to it (``check_graph``).

    Args:
        module: The twin, eval mode, weights as buffers; ``forward``'s parameters are ``spec``'s input names.
        example: Example inputs in ``spec.inputs`` order.
        path: Target ``.onnx`` file.
        opset: ONNX opset.
        spec: The task's IO spec: input/output names and dynamic axes.
        num_labels: C, the width of the logits.

    Raises:
        ExportError: ``forward``'s parameters are not ``spec``'s inputs, ``export_module`` refuses or fails, or the
            graph fails ``check_graph``.
    """
    names = list(forward_names(module, len(example)))
    if names != spec.input_names:
        raise ExportError(
            f"{type(module).__name__}.forward takes {names}; the {spec.task} IO spec needs {spec.input_names}."
        )
    export_module(module, example, path, dynamic_axes=spec.dynamic_axes(), output_names=spec.output_names, opset=opset)
    check_graph(onnx.load(str(path)), num_labels=num_labels, num_layers=module.lowered_layers, spec=spec)


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def check_graph(model: onnx.ModelProto, *, num_labels: int, num_layers: int, spec: IOSpec = CLASSIFY_IO) -> None:
    """Check an exported graph: ONNX checker, strict shape inference, ``spec`` exactly, one LSTM per layer fed
    ``sequence_lens``, constant weights, zero initial state, no sort/unsort or loop machinery.

    Args:
        model: The loaded graph.
        num_labels: C, the expected width of ``logits``.
        num_layers: Expected number of ``LSTM`` nodes.
        spec: The task's IO spec (classifier or tagger).

    Raises:
        ExportError: Names the first broken rule.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"The exported graph is invalid: {err}") from err
    dtypes = {"int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}
    expected_inputs, expected_outputs = (
        [(t.name, dtypes[t.dtype], list(t.resolved(num_labels))) for t in tensors]
        for tensors in (spec.inputs, spec.outputs)
    )
    for kind, values, expected in (
        ("input", model.graph.input, expected_inputs),
        ("output", model.graph.output, expected_outputs),
    ):
        got = [(v.name, v.type.tensor_type.elem_type, _dims(v)) for v in values]
        if got != expected:
            raise ExportError(f"Graph {kind}s are {got}; expected {expected} (name, ONNX dtype, dims).")
    initializers = {init.name for init in model.graph.initializer}
    lstms = [node for node in model.graph.node if node.op_type == "LSTM"]
    if len(lstms) != num_layers:
        raise ExportError(f"Expected {num_layers} ONNX LSTM node(s), found {len(lstms)}.")
    for node in lstms:
        if len(node.input) < 5 or not node.input[4]:
            raise ExportError(f"LSTM node {node.name!r} has no sequence_lens input; padding would leak.")
        missing = [name for name in node.input[1:4] if name not in initializers]
        if missing:
            raise ExportError(f"LSTM node {node.name!r} weights {missing} are not constant initializers.")
        if len(node.input) > 5 and any(node.input[5:]):
            raise ExportError(f"LSTM node {node.name!r} takes an initial state; it must default to zeros.")
    forbidden = sorted({node.op_type for node in model.graph.node} & FORBIDDEN_OPS)
    if forbidden:
        raise ExportError(f"The graph holds {forbidden}: sort/unsort or loop machinery around the LSTM.")
