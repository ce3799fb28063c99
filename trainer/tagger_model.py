"""BiLSTMTagger: (word embedding ++ character CNN) → BiLSTM over true lengths → per-token linear head.

``forward`` (packed sequences) is the one model definition used for evaluation, export parity and serving;
``forward_unpacked`` computes the same function on padded tensors for fast CPU training (see trainer/unpacked.py
for why packed back-propagation is slow on the CPU).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_onnx.runtime.tokenizer import PAD_ID
from lstm_onnx.trainer.tag_config import TaggerConfig
from lstm_onnx.trainer.unpacked import reverse_within_length, run_lstm_direction

__all__ = ["BiLSTMTagger", "char_features"]


def char_features(embedded: torch.Tensor, char_ids: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Character CNN with a max over each token's real characters.

    The conv output goes through ReLU (>= 0), so multiplying padded characters by 0 before the max gives exactly
    the max over real characters, and 0 for a padded position with none. The pad character's embedding is zero
    (``padding_idx``), the same as the conv's zero padding, so a token's features never depend on the batch's W.

    Args:
        embedded: float (N, W, Ec) character embeddings (N = B*T or T*B flattened tokens).
        char_ids: int64 (N, W) the ids they came from, 0 = padding.
        conv: The character convolution (Ec -> F, odd kernel, same padding).

    Returns:
        float (N, F).
    """
    out = functional.relu(conv(embedded.transpose(1, 2)))  # (N, F, W)
    valid = (char_ids != PAD_ID).unsqueeze(1).to(out.dtype)  # (N, 1, W)
    return (out * valid).amax(dim=2)


class BiLSTMTagger(nn.Module):
    """``forward(ids (B, T), char_ids (B, T, W), lengths (B)) -> logits (B, T, C)`` float32.

    Positions at or past a sentence's length are padding: their logits are meaningless and never read.
    """

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.char_embedding = nn.Embedding(config.char_vocab_size, config.char_embedding_dim, padding_idx=PAD_ID)
        self.char_conv = nn.Conv1d(
            config.char_embedding_dim, config.char_filters, config.char_kernel, padding=config.char_kernel // 2
        )
        self.lstm = nn.LSTM(
            input_size=config.embedding_dim + config.char_filters,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden_size, config.num_labels)

    def features(self, ids: torch.Tensor, char_ids: torch.Tensor) -> torch.Tensor:
        """Token features: word embedding ++ character CNN, dropout applied; float (B, T, E + F)."""
        b, t, w = char_ids.shape
        flat = char_ids.reshape(b * t, w)
        chars = char_features(self.char_embedding(flat), flat, self.char_conv).view(b, t, -1)
        features: torch.Tensor = self.dropout(torch.cat([self.embedding(ids), chars], dim=2))
        return features

    def forward(self, ids: torch.Tensor, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Compute per-token logits.

        Args:
            ids: int64 (B, T) word ids, right-padded.
            char_ids: int64 (B, T, W) character ids, 0-padded.
            lengths: int64 (B) true lengths, 1 <= length <= T.

        Returns:
            float32 (B, T, C).
        """
        x = self.features(ids, char_ids)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        logits: torch.Tensor = self.head(self.dropout(y))
        return logits.float()

    def forward_unpacked(self, ids: torch.Tensor, char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``forward`` without packed sequences (same arguments and result; equal in eval mode to 1e-5).

        The forward direction reads the right-padded batch (padding follows every valid step); the backward
        direction reads each sentence reversed within its own length, so it starts at the true last token.
        """
        x = self.features(ids, char_ids)
        for layer in range(self.config.num_layers):
            if layer > 0:
                x = functional.dropout(x, self.config.dropout, self.training)
            fwd = run_lstm_direction(self.lstm, x, layer, "")
            bwd = run_lstm_direction(self.lstm, reverse_within_length(x, lengths), layer, "_reverse")
            x = torch.cat([fwd, reverse_within_length(bwd, lengths)], dim=2)
        logits: torch.Tensor = self.head(self.dropout(x))
        return logits.float()
