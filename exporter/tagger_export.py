"""export_tagger_onnx: a trained ``BiLSTMTagger`` → ``model.onnx`` in the ``TAG_IO`` contract, checked.

Exported through ``export_module`` (by ``export.export_twin``, like the classifier). Per-token logits keep a dynamic
sequence axis on the output as well as the inputs. The sentence LSTM exports as one ONNX ``LSTM`` node per layer fed
``sequence_lens`` (``rnn_nodes.lstm_layer``, the one RNN lowering: see exporter/onnx_module.py for why the packed
model is not traced as it is), so padding never reaches a valid position. The character CNN is plain
Gather/Conv/Relu/Mul/ReduceMax over (T*B, W), every shape read at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lstm_onnx.exporter.export import EXPORTER_MODE, ExportInfo, export_twin
from lstm_onnx.exporter.module_export import DEFAULT_OPSET, check_opset
from lstm_onnx.exporter.rnn_nodes import LoweredRNN, lstm_layer, register_onnx_weights
from lstm_onnx.runtime.contract import TAG_IO
from lstm_onnx.trainer.tagger_model import BiLSTMTagger, char_features

__all__ = ["TAG_EXAMPLE_SHAPE", "OnnxExportTagger", "export_tagger_onnx"]

# (B, T, W) of the traced example: unlike the verification shapes, which then prove every axis dynamic.
TAG_EXAMPLE_SHAPE = (2, 9, 6)


class OnnxExportTagger(LoweredRNN):
    """Computes what a trained ``BiLSTMTagger`` computes at inference, in an exportable, time-major form.

    ``forward(input_ids (B, T), char_ids (B, T, W), lengths (B)) -> logits (B, T, C)``; dropout is left out. Its
    parameters are named as ``TAG_IO``'s inputs: ``export_module`` names the graph inputs after them.

    Args:
        model: The trained tagger (weights copied, model not modified).
    """

    def __init__(self, model: BiLSTMTagger) -> None:
        super().__init__()
        self.config = model.config
        self.lowered_layers = model.config.num_layers
        self.embedding = model.embedding
        self.char_embedding = model.char_embedding
        self.char_conv = model.char_conv
        self.head = model.head
        register_onnx_weights(self, model.lstm, "lstm")
        # Inference only: the tracer (paused inside the LSTM Function) must not see outputs that require grad.
        self.requires_grad_(False)
        self.eval()

    def forward(self, input_ids: torch.Tensor, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-token logits: float32 (B, T, C); positions past a sentence's length hold the head's bias."""
        config = self.config
        seq_lens = lengths.to(torch.int32)  # ONNX LSTM wants int32; the Cast stays in the graph
        # Transpose the int ids, not float activations: the Gathers then write time-major (T, B, ...) directly.
        words = self.embedding(input_ids.transpose(0, 1))  # (T, B, E)
        chars_tb = char_ids.transpose(0, 1)  # (T, B, W)
        flat = chars_tb.reshape(-1, chars_tb.shape[2])  # (T*B, W)
        chars = char_features(self.char_embedding(flat), flat, self.char_conv)  # (T*B, F)
        x = torch.cat([words, chars.view(chars_tb.shape[0], chars_tb.shape[1], -1)], dim=2)  # (T, B, E+F)
        y = x
        for layer in range(config.num_layers):
            if layer > 0:
                x = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)  # (T, D, B, H) -> (T, B, 2H)
            y, _ = lstm_layer(
                x,
                seq_lens,
                getattr(self, f"lstm{layer}_W"),
                getattr(self, f"lstm{layer}_R"),
                getattr(self, f"lstm{layer}_B"),
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
        ExportError: Unsupported opset, torch.onnx failure, or a graph failing ``export.check_graph`` with ``TAG_IO``.
    """
    check_opset(opset)
    config = model.config
    module = OnnxExportTagger(model)
    batch, steps, width = TAG_EXAMPLE_SHAPE
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, config.vocab_size, (batch, steps), generator=generator)
    char_ids = torch.randint(2, config.char_vocab_size, (batch, steps, width), generator=generator)
    lengths = torch.tensor([steps, steps // 2 + 1], dtype=torch.int64)
    ids[1, int(lengths[1]) :] = 0
    char_ids[1, int(lengths[1]) :] = 0
    export_twin(module, (ids, char_ids, lengths), path, opset=opset, spec=TAG_IO, num_labels=config.num_labels)
    return ExportInfo(opset=opset, exporter_mode=EXPORTER_MODE, example_shape=(batch, steps))
