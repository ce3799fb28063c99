"""BiLSTMClassifier: embedding → (bi)LSTM over true lengths → pooling over valid positions → linear head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_onnx.runtime.tokenizer import PAD_ID
from lstm_onnx.trainer.config import ModelConfig

__all__ = ["BiLSTMClassifier", "masked_pool"]


def masked_pool(
    outputs: torch.Tensor, lengths: torch.Tensor, h_n: torch.Tensor, pooling: tuple[str, ...]
) -> torch.Tensor:
    """Pool LSTM outputs over valid positions only.

    Args:
        outputs: float (B, T, D*H) LSTM outputs; padded positions may hold anything.
        lengths: int64 (B) true lengths, all >= 1, on the same device as ``outputs``.
        h_n: float (D, B, H) final hidden state of the last layer (forward: position length-1,
            backward: position 0).
        pooling: Names from ``POOLINGS``, concatenated in this order.

    Returns:
        float (B, len(pooling) * D * H).
    """
    steps = torch.arange(outputs.shape[1], device=outputs.device)
    valid = (steps.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)  # (B, T, 1)
    parts = []
    for name in pooling:
        if name == "last":
            parts.append(h_n.transpose(0, 1).reshape(h_n.shape[1], -1))  # (B, D*H)
        elif name == "max":
            # -inf never wins because every text has at least one valid position.
            parts.append(outputs.masked_fill(~valid, float("-inf")).amax(dim=1))
        elif name == "mean":
            total = outputs.masked_fill(~valid, 0.0).sum(dim=1)
            parts.append(total / lengths.unsqueeze(1).to(outputs.dtype))
        else:  # pragma: no cover - ModelConfig validates names
            raise ValueError(f"Unknown pooling {name!r}.")
    return torch.cat(parts, dim=1)


class BiLSTMClassifier(nn.Module):
    """The one model definition.

    ``forward(ids (B, T) int64, lengths (B) int64) -> logits (B, C) float32``. The LSTM reads each text's
    true length through a packed sequence, so padding never changes a text's logits.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(
            input_size=config.embedding_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.features, config.num_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Compute logits.

        Args:
            ids: int64 (B, T) token ids, right-padded with ``PAD_ID``.
            lengths: int64 (B) true lengths, 1 <= length <= T.

        Returns:
            float32 (B, C) logits.
        """
        embedded = self.dropout(self.embedding(ids))  # (B, T, E)
        # pack_padded_sequence wants lengths on the CPU; enforce_sorted=False keeps the caller's order.
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, (h_n, _) = self.lstm(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=ids.shape[1])
        d = self.config.num_directions
        pooled = masked_pool(outputs, lengths.to(outputs.device), h_n[-d:], self.config.pooling)
        logits: torch.Tensor = self.head(self.dropout(pooled))
        return logits.float()
