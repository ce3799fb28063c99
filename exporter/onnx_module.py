"""An export-only twin of ``BiLSTMClassifier`` whose LSTM layers export as single ONNX ``LSTM`` nodes.

Why a twin and not ``torch.onnx.export(BiLSTMClassifier)``: the trained model feeds its LSTM a packed sequence.
Neither exporter maps that to ONNX ``LSTM``'s ``sequence_lens``:

- TorchScript traces the pack/unpack around the LSTM as no-ops or as sort/unsort + scatter machinery frozen to
  the example's batch, so padding leaks into the scores or other batch sizes fail
  (https://github.com/pytorch/pytorch/issues/48460, https://github.com/pytorch/pytorch/issues/62240,
  https://github.com/pytorch/pytorch/issues/41774, https://github.com/microsoft/onnxruntime/issues/11830).
- dynamo does not trace ``pack_padded_sequence`` at all (https://github.com/pytorch/pytorch/issues/112044).

So each layer goes through ``rnn_nodes.lstm_layer``, the one RNN lowering (users' models use it too): a
``torch.autograd.Function`` that computes in eager torch exactly what the trained model computes (a packed
``nn.LSTM`` pass) and whose ``symbolic`` emits one ONNX ``LSTM`` node with ``sequence_lens`` (TorchScript exporter,
``dynamo=False``). Weights are buffers already in ONNX layout (gate order iofc, bias = concat(Wb, Rb)), so they land
in the graph as constant initializers.
"""

from __future__ import annotations

import torch
from torch import nn

from lstm_onnx.exporter.rnn_nodes import LoweredRNN, lstm_layer, register_onnx_weights
from lstm_onnx.trainer.model import BiLSTMClassifier

__all__ = ["OnnxExportClassifier"]


def _time_major_pool(
    y: torch.Tensor, lengths: torch.Tensor, h_n: torch.Tensor, pooling: tuple[str, ...]
) -> torch.Tensor:
    """``trainer.model.masked_pool`` computed on the last LSTM's output as ONNX ``LSTM`` writes it, (T, D, B, H).

    Pooling along axis 0 of Y and transposing only the pooled (D, B, H) results keeps the full-sequence Transposes
    (T, D, B, H) -> (B, T, D*H) out of the graph. ORT's CPU ``LSTM`` and ``DynamicQuantizeLSTM`` write exact zeros
    past each ``sequence_lens`` (measured on onnxruntime 1.31.1), but the ONNX spec leaves those values undefined and
    the cuDNN path could not be checked here, so "mean" multiplies by the validity mask as well (one broadcast Mul,
    ~2% of the int8 model's time) rather than trust the padding. "max" adds a -inf mask (every length is >= 1).
    ORT op profile of the int8 benchmark model (B=32, T=256, 1 thread): non-LSTM ops 18.3 -> 13.0 ms per run.

    Args:
        y: float (T, D, B, H) last-layer outputs, zeros past each length.
        lengths: int64 (B) true lengths, all >= 1.
        h_n: float (D, B, H) last-layer final hidden state.
        pooling: Names from ``POOLINGS``, concatenated in this order.

    Returns:
        float (B, len(pooling) * D * H), feature order as ``masked_pool``'s (direction-major within each part).
    """
    steps = torch.arange(y.shape[0], device=y.device)
    valid = steps.view(-1, 1, 1, 1) < lengths.view(1, 1, -1, 1)  # (T, 1, B, 1)
    parts = []
    for name in pooling:
        if name == "last":
            pooled = h_n
        elif name == "max":
            # An additive (T, 1, B, 1) mask, 0 on valid steps and -inf past each length: y + 0 is y and y + -inf is
            # -inf exactly, so this is masked_fill's result, but ORT's broadcast Add is ~2x cheaper than a
            # broadcast Where on the full (T, D, B, H) tensor (2.4 vs 4.6 ms at T=256, B=32, H=256, 1 thread).
            penalty = torch.where(valid, 0.0, float("-inf")).to(y.dtype)
            pooled = (y + penalty).amax(dim=0)
        elif name == "mean":
            pooled = (y * valid.to(y.dtype)).sum(dim=0) / lengths.view(1, -1, 1).to(y.dtype)
        else:  # pragma: no cover - ModelConfig validates names
            raise ValueError(f"Unknown pooling {name!r}.")
        parts.append(pooled.transpose(0, 1).reshape(pooled.shape[1], -1))  # (D, B, H) -> (B, D*H)
    return torch.cat(parts, dim=1)


class OnnxExportClassifier(LoweredRNN):
    """Computes what a trained ``BiLSTMClassifier`` computes, in an exportable form.

    ``forward(input_ids (B, T) int64, lengths (B) int64) -> logits (B, C) float32``, parameters named as
    ``CLASSIFY_IO``'s inputs (``export_module`` names the graph inputs after them). Build it from a model in eval
    mode: dropout is left out (it is the identity at inference).

    Args:
        model: The trained classifier; its weights are copied (the model is not modified).
    """

    def __init__(self, model: BiLSTMClassifier) -> None:
        super().__init__()
        config = model.config
        self.config = config
        self.lowered_layers = config.num_layers
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.embedding.load_state_dict(model.embedding.state_dict())
        self.head = nn.Linear(config.features, config.num_labels)
        self.head.load_state_dict(model.head.state_dict())
        register_onnx_weights(self, model.lstm, "lstm")
        # Inference only. Without this the Function's outputs require grad (via the embedding), and the tracer,
        # paused inside the Function, would try to bake them into the graph as constants.
        self.requires_grad_(False)
        self.eval()

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Compute logits.

        Args:
            input_ids: int64 (B, T) token ids, right-padded.
            lengths: int64 (B) true lengths, 1 <= length <= T.

        Returns:
            float32 (B, C) logits.
        """
        config = self.config
        # ONNX LSTM wants sequence_lens as int32; the Cast lives inside the graph so callers keep int64.
        seq_lens = lengths.to(torch.int32)
        # Transpose the int64 ids (B, T), not the embedded floats (B, T, E): the Gather then writes the time-major
        # (T, B, E) input that layout 0 wants directly, and no Transpose of the embeddings is left in the graph.
        x = self.embedding(input_ids.transpose(0, 1))  # (T, B, E)
        y = x  # rebound by the loop (num_layers >= 1)
        h_n = x
        for layer in range(config.num_layers):
            if layer > 0:
                # Y (T, D, B, H) -> (T, B, D*H): forward and backward features side by side, as torch concatenates
                # them. A Reshape alone cannot do this (D sits between T and B), so the Transpose stays here.
                # Shapes come from the tensor at run time (traced as Shape ops), never from the example.
                x = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
            y, h_n = lstm_layer(
                x,
                seq_lens,
                getattr(self, f"lstm{layer}_W"),
                getattr(self, f"lstm{layer}_R"),
                getattr(self, f"lstm{layer}_B"),
            )
        pooled = _time_major_pool(y, lengths, h_n, config.pooling)
        logits: torch.Tensor = self.head(pooled).float()
        return logits
