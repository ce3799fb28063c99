"""Real-world RNN model shapes for module export tests: each factory returns (model, example_inputs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

VOCAB = 60


class PackedSortedClassifier(nn.Module):
    """Packed, sorted lengths, 2-layer BiLSTM, last states hidden[-2:] -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(12, 3)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.emb(ids), lengths.cpu(), batch_first=True)
        _, (hidden, _) = self.lstm(packed)
        return self.head(torch.cat([hidden[-2], hidden[-1]], dim=1))


class PackedUnsortedTagger(nn.Module):
    """Packed with enforce_sorted=False, time-major (not batch_first), per-token outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 5, bidirectional=True)
        self.tags = nn.Linear(10, 4)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids.t())  # (T, B, E)
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(out, total_length=ids.size(1))
        return self.tags(y).transpose(0, 1)  # (B, T, 4)


class PaddedMeanPool(nn.Module):
    """Padded tensor (no packing), 3 layers unidirectional, masked mean pooling with lengths."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 6, num_layers=3, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(ids))
        mask = (torch.arange(ids.size(1)).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1).float()
        return self.head((out * mask).sum(1) / lengths.unsqueeze(1).float())


class ExplicitZeroState(nn.Module):
    """Explicit zero h0/c0 sized from the input, packed, 2 layers bidirectional."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 4, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h0 = torch.zeros(4, ids.size(0), 4)
        c0 = torch.zeros(4, ids.size(0), 4)
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed, (h0, c0))
        return hidden.transpose(0, 1).reshape(ids.size(0), -1)


class UnbatchedFeatures(nn.Module):
    """Unbatched (T, F) float features into a GRU, last output."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(5, 7)
        self.head = nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out[-1])


class PackedGRUFeatures(nn.Module):
    """Float features (B, T, F), packed, bidirectional GRU, max pool over valid steps."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 6, bidirectional=True, batch_first=True)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, padding_value=float("-inf"))
        return y.max(dim=1).values


class StackedModuleList(nn.Module):
    """RNNs inside an nn.ModuleList: a GRU then an LSTM, each packed; final hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 6)
        self.rnns = nn.ModuleList([nn.GRU(6, 5, batch_first=True), nn.LSTM(5, 4, batch_first=True)])

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)
        for rnn in self.rnns:
            out, _ = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            x, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.size(1))
        return x[:, 0]


class PaddedMaxPoolNoLengths(nn.Module):
    """Reads its padding: a BiLSTM over the padded batch and a max over every step (lengths ignored)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 4, bidirectional=True, batch_first=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(ids))
        return out.max(dim=1).values


class CellLoop(nn.Module):
    """Refused: an LSTMCell stepped by a Python loop."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = torch.zeros(x.size(0), 4)
        for t in range(x.size(1)):
            h, c = self.cell(x[:, t], (h, c))
        return h


class Stateful(nn.Module):
    """Refused: keeps its hidden state between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.state: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, self.state = self.lstm(x, self.state)
        return out


def _ids(batch: int = 3, steps: int = 7, sorted_: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 7, 2][:batch] if not sorted_ else [7, 5, 2][:batch])
    ids = torch.randint(1, VOCAB, (batch, steps), generator=generator)
    return ids, lengths


def _make(cls: type[nn.Module], example: tuple[torch.Tensor, ...]) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return cls().eval(), example


ZOO: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "packed_sorted_bilstm2_last_states": lambda: _make(PackedSortedClassifier, _ids(sorted_=True)),
    "packed_unsorted_time_major_tagger": lambda: _make(PackedUnsortedTagger, _ids()),
    "padded_lstm3_masked_mean": lambda: _make(PaddedMeanPool, _ids()),
    "explicit_zero_h0_c0": lambda: _make(ExplicitZeroState, _ids()),
    "unbatched_gru_features": lambda: _make(
        UnbatchedFeatures, (torch.randn(6, 5, generator=torch.Generator().manual_seed(0)),)
    ),
    "packed_bigru_float_features_max": lambda: _make(
        PackedGRUFeatures, (torch.randn(3, 7, 3, generator=torch.Generator().manual_seed(0)), _ids()[1])
    ),
    "modulelist_gru_then_lstm": lambda: _make(StackedModuleList, _ids()),
    "padded_max_pool_reads_padding": lambda: _make(PaddedMaxPoolNoLengths, _ids()),
}
REFUSED: dict[str, tuple[Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]], str]] = {
    "lstm_cell_loop": (lambda: _make(CellLoop, (torch.randn(2, 5, 3),)), "RNN cell stepped by a Python loop"),
    "proj_size": (lambda: (nn.LSTM(3, 4, proj_size=2).eval(), (torch.randn(5, 2, 3),)), "proj_size=2"),
    "stateful": (lambda: _make(Stateful, (torch.randn(2, 5, 3),)), "carries state between calls"),
}
