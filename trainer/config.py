"""Model configuration (no torch import: the CLI and exporter read it without loading torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["POOLINGS", "ModelConfig"]

POOLINGS = ("last", "max", "mean")


def _reject_unknown(cls: type, data: dict[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} key(s) {unknown}; expected some of {sorted(known)}.")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a ``BiLSTMClassifier``.

    Attributes:
        vocab_size: Rows of the embedding (``<pad>`` = 0, ``<unk>`` = 1 included).
        num_labels: Output classes C.
        embedding_dim: Embedding width E.
        hidden_size: LSTM hidden size H per direction.
        num_layers: Stacked LSTM layers.
        bidirectional: Read both directions (D = 2) or forward only (D = 1).
        dropout: Dropout on embeddings, between LSTM layers and before the head.
        pooling: Poolings over valid positions, concatenated in this order: any of last, max, mean.
    """

    vocab_size: int
    num_labels: int
    embedding_dim: int = 50
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    pooling: tuple[str, ...] = ("max", "mean")

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (<pad>, <unk> and a word), got {self.vocab_size}.")
        if self.num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {self.num_labels}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        object.__setattr__(self, "pooling", tuple(self.pooling))
        bad = [p for p in self.pooling if p not in POOLINGS]
        if not self.pooling or bad or len(set(self.pooling)) != len(self.pooling):
            raise ValueError(f"pooling must be distinct names from {POOLINGS}, got {list(self.pooling)}.")

    @property
    def num_directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def features(self) -> int:
        """Width of the pooled vector fed to the head: len(pooling) * D * H."""
        return len(self.pooling) * self.num_directions * self.hidden_size

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        data = asdict(self)
        data["pooling"] = list(self.pooling)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dict, rejecting unknown keys."""
        _reject_unknown(cls, data)
        return cls(**data)
