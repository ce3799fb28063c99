"""export_tagger_onnx: a trained ``BiLSTMTagger`` → ``model.onnx`` in the ``TAG_IO`` contract, checked.

Per-token logits keep a dynamic sequence axis on the output as well as the inputs. The sentence LSTM exports as
one ONNX ``LSTM`` node per layer fed ``sequence_lens`` (the classifier's ``_OnnxLSTM`` Function: see
exporter/onnx_module.py for why the packed model cannot be exported directly), so padding never reaches a valid
position. The character CNN is plain Gather/Conv/Relu/Mul/ReduceMax over (T*B, W), every shape read at run time.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from lstm_onnx.exporter.export import DEFAULT_OPSET, EXPORTER_MODE, MIN_OPSET, ExportInfo
from lstm_onnx.exporter.onnx_module import _OnnxLSTM, onnx_gate_order
from lstm_onnx.runtime.contract import TAG_IO
from lstm_onnx.runtime.errors import ExportError
from lstm_onnx.trainer.tagger_model import BiLSTMTagger, char_features

__all__ = ["TAG_EXAMPLE_SHAPE", "OnnxExportTagger", "check_tag_graph", "export_tagger_onnx"]

# (B, T, W) of the traced example: unlike the verification shapes, which then prove every axis dynamic.
TAG_EXAMPLE_SHAPE = (2, 9, 6)
_TYPES = {"int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}
_FORBIDDEN_OPS = frozenset({"TopK", "ScatterElements", "ScatterND", "Loop", "Scan", "If"})


class OnnxExportTagger(nn.Module):
    """Computes what a trained ``BiLSTMTagger`` computes at inference, in an exportable, time-major form.

    ``forward(ids (B, T), char_ids (B, T, W), lengths (B)) -> logits (B, T, C)``; dropout is left out.

    Args:
        model: The trained tagger (weights copied, model not modified).
    """

    def __init__(self, model: BiLSTMTagger) -> None:
        super().__init__()
        self.config = model.config
        self.embedding = model.embedding
        self.char_embedding = model.char_embedding
        self.char_conv = model.char_conv
        self.head = model.head
        for layer in range(self.config.num_layers):
            w, r, b = [], [], []
            for s in ("", "_reverse"):
                lstm = model.lstm
                w.append(onnx_gate_order(getattr(lstm, f"weight_ih_l{layer}{s}").detach()))
                r.append(onnx_gate_order(getattr(lstm, f"weight_hh_l{layer}{s}").detach()))
                b.append(
                    torch.cat(
                        [
                            onnx_gate_order(getattr(lstm, f"bias_ih_l{layer}{s}").detach()),
                            onnx_gate_order(getattr(lstm, f"bias_hh_l{layer}{s}").detach()),
                        ]
                    )
                )
            self.register_buffer(f"lstm{layer}_W", torch.stack(w).clone())  # (2, 4H, In)
            self.register_buffer(f"lstm{layer}_R", torch.stack(r).clone())  # (2, 4H, H)
            self.register_buffer(f"lstm{layer}_B", torch.stack(b).clone())  # (2, 8H)
        # Inference only: the tracer (paused inside the LSTM Function) must not see outputs that require grad.
        self.requires_grad_(False)
        self.eval()

    def forward(self, ids: torch.Tensor, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-token logits: float32 (B, T, C); positions past a sentence's length hold the head's bias."""
        config = self.config
        seq_lens = lengths.to(torch.int32)  # ONNX LSTM wants int32; the Cast stays in the graph
        # Transpose the int ids, not float activations: the Gathers then write time-major (T, B, ...) directly.
        words = self.embedding(ids.transpose(0, 1))  # (T, B, E)
        chars_tb = char_ids.transpose(0, 1)  # (T, B, W)
        flat = chars_tb.reshape(-1, chars_tb.shape[2])  # (T*B, W)
        chars = char_features(self.char_embedding(flat), flat, self.char_conv)  # (T*B, F)
        x = torch.cat([words, chars.view(chars_tb.shape[0], chars_tb.shape[1], -1)], dim=2)  # (T, B, E+F)
        y = x
        for layer in range(config.num_layers):
            if layer > 0:
                x = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)  # (T, D, B, H) -> (T, B, 2H)
            y, _ = _OnnxLSTM.apply(  # type: ignore[no-untyped-call]
                x,
                seq_lens,
                getattr(self, f"lstm{layer}_W"),
                getattr(self, f"lstm{layer}_R"),
                getattr(self, f"lstm{layer}_B"),
                config.embedding_dim + config.char_filters if layer == 0 else 2 * config.hidden_size,
                config.hidden_size,
                2,
            )
        # Y (T, 2, B, H) -> (B, T, 2H): forward and backward features side by side, as torch concatenates them.
        out = y.permute(2, 0, 1, 3).reshape(y.shape[2], y.shape[0], -1)
        logits: torch.Tensor = self.head(out).float()
        return logits


def export_tagger_onnx(model: BiLSTMTagger, path: Path, *, opset: int = DEFAULT_OPSET, seed: int = 0) -> ExportInfo:
    """Export ``model`` with dynamic batch, sequence and word-length axes, then check the graph.

    Args:
        model: Trained tagger (eval mode; not modified).
        path: Target ``.onnx`` file.
        opset: ONNX opset, >= ``MIN_OPSET``.
        seed: Seeds the example input.

    Returns:
        The export settings (``example_shape`` is (B, T) of the example).

    Raises:
        ExportError: Unsupported opset, torch.onnx failure, or a graph failing ``check_tag_graph``.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"Opset {opset} is too old: ONNX LSTM needs layout/sequence_lens (opset >= {MIN_OPSET}).")
    config = model.config
    module = OnnxExportTagger(model)
    batch, steps, width = TAG_EXAMPLE_SHAPE
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, config.vocab_size, (batch, steps), generator=generator)
    char_ids = torch.randint(2, config.char_vocab_size, (batch, steps, width), generator=generator)
    lengths = torch.tensor([steps, steps // 2 + 1], dtype=torch.int64)
    ids[1, int(lengths[1]) :] = 0
    char_ids[1, int(lengths[1]) :] = 0
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream in favour of dynamo; it is chosen on purpose.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(
                module,
                (ids, char_ids, lengths),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=TAG_IO.input_names,
                output_names=TAG_IO.output_names,
                dynamic_axes=TAG_IO.dynamic_axes(),
                do_constant_folding=True,
                export_params=True,
                keep_initializers_as_inputs=False,
            )
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as err:
        raise ExportError(f"torch.onnx.export failed at opset {opset}: {err}. Try --opset {DEFAULT_OPSET}.") from err
    check_tag_graph(onnx.load(str(path)), num_labels=config.num_labels, num_layers=config.num_layers)
    return ExportInfo(opset=opset, exporter_mode=EXPORTER_MODE, example_shape=(batch, steps))


def check_tag_graph(model: onnx.ModelProto, *, num_labels: int, num_layers: int) -> None:
    """Check a tagger graph: ONNX checker, strict shape inference, ``TAG_IO`` exactly, one LSTM per layer.

    Raises:
        ExportError: Names the first broken rule.
    """
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"The exported graph is invalid: {err}") from err
    for kind, values, specs in (
        ("input", model.graph.input, TAG_IO.inputs),
        ("output", model.graph.output, TAG_IO.outputs),
    ):
        got = [
            (v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values
        ]
        want = [(s.name, _TYPES[s.dtype], list(s.resolved(num_labels))) for s in specs]
        if got != want:
            raise ExportError(f"Graph {kind}s are {got}; expected {want} (name, ONNX dtype, dims).")
    initializers = {init.name for init in model.graph.initializer}
    lstms = [node for node in model.graph.node if node.op_type == "LSTM"]
    if len(lstms) != num_layers:
        raise ExportError(f"Expected {num_layers} ONNX LSTM node(s), found {len(lstms)}.")
    for node in lstms:
        if len(node.input) < 5 or not node.input[4]:
            raise ExportError(f"LSTM node {node.name!r} has no sequence_lens input; padding would leak into tags.")
        if any(name not in initializers for name in node.input[1:4]):
            raise ExportError(f"LSTM node {node.name!r} weights are not constant initializers.")
        if len(node.input) > 5 and any(node.input[5:]):
            raise ExportError(f"LSTM node {node.name!r} takes an initial state; it must default to zeros.")
    forbidden = sorted({node.op_type for node in model.graph.node} & _FORBIDDEN_OPS)
    if forbidden:
        raise ExportError(f"The graph holds {forbidden}: sort/unsort or loop machinery around the LSTM.")
