"""The model's forward pass without packed sequences, for training on the CPU.

Why: on the CPU, autograd through a packed ``nn.LSTM`` whose lengths differ within the batch spends
almost all its time zero-filling gradient buffers (``SliceBackward0`` → ``aten::fill_`` once per time step
over the whole packed input: quadratic in tokens). Measured on torch 2.13 CPU, batch 64 x 250 tokens,
E=50, H=64: 0.2 s per step with equal lengths, 1.4-2.0 s with varied lengths. Training would not fit the
cpu preset's 10-minute budget.

This module computes the same function as ``BiLSTMClassifier.forward`` (same parameters, same pooling;
a test holds them equal to 1e-5) on padded tensors: the forward direction reads the right-padded batch
(padding comes after every valid step, so it cannot reach a valid output), and the reverse direction
reads each text reversed within its own length, so it starts at the text's true last token.
``BiLSTMClassifier.forward`` stays the one model definition for evaluation, export and serving.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from lstm_onnx.trainer.model import BiLSTMClassifier, masked_pool

__all__ = ["forward_unpacked", "reverse_within_length", "run_lstm_direction"]


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` steps; padded steps stay in place.

    Args:
        x: (B, T, F) batch-first tensor.
        lengths: int64 (B) true lengths on ``x``'s device.

    Returns:
        (B, T, F) with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]``.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    rev = lengths.unsqueeze(1) - 1 - steps  # (B, T)
    index = torch.where(rev >= 0, rev, steps)
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


def run_lstm_direction(lstm: nn.LSTM, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    """One direction of one layer of a batch-first ``nn.LSTM`` on a dense input, from a zero state.

    Args:
        lstm: The LSTM whose parameters to use.
        x: float (B, T, F) input.
        layer: Layer index.
        suffix: ``""`` for the forward direction, ``"_reverse"`` for the backward one.

    Returns:
        float (B, T, H) outputs.
    """
    weights = [
        getattr(lstm, f"weight_ih_l{layer}{suffix}"),
        getattr(lstm, f"weight_hh_l{layer}{suffix}"),
        getattr(lstm, f"bias_ih_l{layer}{suffix}"),
        getattr(lstm, f"bias_hh_l{layer}{suffix}"),
    ]
    zeros = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    # torch.lstm is the op nn.LSTM itself calls; one layer, one direction, on a dense (B, T, F) input.
    out, _, _ = torch.lstm(x, (zeros, zeros), weights, True, 1, 0.0, lstm.training, False, True)
    return out


def _run_direction(model: BiLSTMClassifier, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    return run_lstm_direction(model.lstm, x, layer, suffix)


def forward_unpacked(model: BiLSTMClassifier, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Logits as ``model(ids, lengths)`` computes them, without packed sequences.

    Dropout draws differ from the packed path's (different op order), so training-mode outputs match
    only in distribution; in eval mode they match to float rounding.

    Args:
        model: The classifier (its ``lstm`` must be batch-first, as ``BiLSTMClassifier`` builds it).
        ids: int64 (B, T) right-padded token ids.
        lengths: int64 (B) true lengths, 1 <= length <= T, on ``ids``'s device.

    Returns:
        float32 (B, C) logits.
    """
    config = model.config
    x = model.dropout(model.embedding(ids))  # (B, T, E)
    last_index = (lengths - 1).view(-1, 1, 1)  # (B, 1, 1): position of each text's last token
    finals: list[torch.Tensor] = []
    for layer in range(config.num_layers):
        if layer > 0:
            # nn.LSTM applies its dropout to every layer's output except the last.
            x = functional.dropout(x, config.dropout, model.training)
        fwd = _run_direction(model, x, layer, "")  # (B, T, H)
        parts = [fwd]
        finals = [fwd.gather(1, last_index.expand(-1, 1, fwd.shape[2])).squeeze(1)]
        if config.bidirectional:
            bwd_rev = _run_direction(model, reverse_within_length(x, lengths), layer, "_reverse")
            # The reverse direction's final state is its output after reading the text's first token.
            finals.append(bwd_rev.gather(1, last_index.expand(-1, 1, bwd_rev.shape[2])).squeeze(1))
            parts.append(reverse_within_length(bwd_rev, lengths))
        x = torch.cat(parts, dim=2) if len(parts) > 1 else fwd  # (B, T, D*H)
    h_n = torch.stack(finals)  # (D, B, H), the last layer's final states, like nn.LSTM's h_n[-D:]
    pooled = masked_pool(x, lengths, h_n, config.pooling)
    logits: torch.Tensor = model.head(model.dropout(pooled)).float()
    return logits
