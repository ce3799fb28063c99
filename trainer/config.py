"""Model and training configuration (no torch import: the CLI and exporter read it without loading torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lstm_onnx.runtime.errors import ConfigError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_THREADS, MAX_WORKERS, check_range

__all__ = ["DEVICES", "OPTIMIZERS", "POOLINGS", "ModelConfig", "TrainConfig"]

POOLINGS = ("last", "max", "mean")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "adamw")


def _reject_unknown(cls: type, data: dict[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} key(s) {unknown}; expected some of {sorted(known)}.")


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
        for name, most in (
            ("vocab_size", 10_000_000),
            ("embedding_dim", 4096),
            ("hidden_size", 4096),
            ("num_layers", 16),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise ConfigError(f"{name} must be an int in 1..{most}, got {value!r:.40}.")
        if self.vocab_size < 3:
            raise ConfigError(f"vocab_size must be >= 3 (<pad>, <unk> and a word), got {self.vocab_size}.")
        if self.num_labels < 2:
            raise ConfigError(f"num_labels must be >= 2, got {self.num_labels}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}.")
        object.__setattr__(self, "pooling", tuple(self.pooling))
        bad = [p for p in self.pooling if p not in POOLINGS]
        if not self.pooling or bad or len(set(self.pooling)) != len(self.pooling):
            raise ConfigError(f"pooling must be distinct names from {POOLINGS}, got {list(self.pooling)}.")

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


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data handling, optimisation, schedule, stopping, device.

    The learning-rate schedule is a linear warm-up over ``warmup_steps`` steps, then a factor ``lr_decay``
    per finished epoch. It never depends on the total number of epochs, so a run resumed with more
    ``epochs`` follows exactly the path an uninterrupted longer run would have taken.

    Attributes:
        epochs: Maximum number of epochs.
        batch_size: Texts per training batch.
        eval_batch_size: Texts per evaluation batch.
        lr: Peak learning rate.
        lr_decay: Learning-rate factor applied after each epoch (1.0: constant).
        warmup_steps: Linear warm-up steps from lr/10 to lr (0: none).
        optimizer: ``adam`` or ``adamw``.
        weight_decay: Weight decay (decoupled for ``adamw``).
        clip_norm: Gradient clipping by global norm (0: off).
        patience: Stop after this many epochs without a better validation accuracy (0: never stop early).
        val_fraction: Stratified share of the training data held out for validation.
        seed: Seed for the split, initialisation, dropout and batch order.
        min_freq: Keep vocabulary tokens seen at least this often in the training split.
        max_vocab: Cap on the vocabulary size, specials included (``None``: no cap).
        train_head_tokens: Training reads at most the first this-many tokens of a long text (``None``: all)...
        train_tail_tokens: ...plus its last this-many tokens (0: none). Validation and test read every token
            unless ``eval_crop`` is set.
        eval_crop: Crop validation and test texts like training texts (inference always reads every token).
        bucket_batches: Length bucketing: sort each chunk of this many batches by length before batching
            (less padding); 1 turns bucketing off.
        embeddings: Path of pretrained GloVe/word2vec text vectors (plain or .gz); ``None``: random init.
        freeze_embeddings: Keep pretrained vectors fixed.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: Mixed precision (float16 autocast + gradient scaling) when on CUDA; ignored on the CPU.
        threads: torch intra-op threads on the CPU (``None``: leave torch's default).
        tokenize_workers: Processes used to tokenize large datasets.
    """

    epochs: int = 2
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 2e-3
    lr_decay: float = 1.0
    warmup_steps: int = 0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clip_norm: float = 5.0
    patience: int = 2
    val_fraction: float = 0.1
    seed: int = 0
    min_freq: int = 1
    max_vocab: int | None = None
    train_head_tokens: int | None = None
    train_tail_tokens: int = 0
    eval_crop: bool = False
    bucket_batches: int = 50
    embeddings: str | None = None
    freeze_embeddings: bool = False
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    tokenize_workers: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "min_freq", "bucket_batches", "tokenize_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("warmup_steps", "weight_decay", "clip_norm", "patience", "train_tail_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}.")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}.")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {self.device!r}.")
        if self.max_vocab is not None and self.max_vocab < 3:
            raise ConfigError(f"max_vocab must be >= 3 or None, got {self.max_vocab}.")
        if self.train_head_tokens is not None and self.train_head_tokens < 1:
            raise ConfigError(f"train_head_tokens must be >= 1 or None, got {self.train_head_tokens}.")
        check_range("threads", self.threads, 1, MAX_THREADS, optional=True)
        check_range("tokenize_workers", self.tokenize_workers, 1, MAX_WORKERS)
        for name in ("batch_size", "eval_batch_size"):
            check_range(name, getattr(self, name), 1, MAX_BATCH_SIZE)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys."""
        _reject_unknown(cls, data)
        return cls(**data)
