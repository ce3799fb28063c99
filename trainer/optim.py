"""What the classifier's and the tagger's training loops share: pretrained vectors in, and the optimizer."""

from __future__ import annotations

import torch
from torch import nn

from lstm_onnx.trainer.config import TrainConfig
from lstm_onnx.trainer.embeddings import Coverage

__all__ = ["init_embedding", "make_optimizer"]


def init_embedding(embedding: nn.Embedding, coverage: Coverage | None, config: TrainConfig) -> None:
    """Copy pretrained vectors into the embedding (when read), and freeze it if the config says so.

    Args:
        embedding: The model's word embedding, (V, E).
        coverage: Vectors from ``read_vectors`` for the run's vocabulary, or ``None``.
        config: ``freeze_embeddings`` applies only when vectors were given.
    """
    if coverage is not None:
        with torch.no_grad():
            embedding.weight.copy_(torch.from_numpy(coverage.matrix))
    embedding.weight.requires_grad_(not (config.freeze_embeddings and config.embeddings))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW (``config.optimizer``) over the parameters that train, with the config's lr and weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_cls(params, lr=config.lr, weight_decay=config.weight_decay)
