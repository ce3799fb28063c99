"""The model's padding invariance and the CPU training path's equality to it."""

from __future__ import annotations

import pytest
import torch

from lstm_onnx.trainer.config import ModelConfig
from lstm_onnx.trainer.model import BiLSTMClassifier
from lstm_onnx.trainer.unpacked import forward_unpacked, reverse_within_length

_SHAPES = [(True, 1), (True, 2), (False, 1)]


def _model(bidirectional: bool, layers: int) -> BiLSTMClassifier:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=50,
        num_labels=2,
        embedding_dim=8,
        hidden_size=8,
        num_layers=layers,
        bidirectional=bidirectional,
        pooling=("last", "max", "mean"),
    )
    return BiLSTMClassifier(config).eval()


def _batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 50, (len(lengths), max(lengths)), generator=gen)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return ids, torch.tensor(lengths)


@pytest.mark.parametrize(("bidirectional", "layers"), _SHAPES)
def test_model_padding_does_not_change_logits(bidirectional: bool, layers: int) -> None:
    model = _model(bidirectional, layers)
    ids, lengths = _batch([3, 20, 11, 33])
    with torch.no_grad():
        batch_logits = model(ids, lengths)
        alone = model(ids[:1, :3], lengths[:1])
    torch.testing.assert_close(batch_logits[:1], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("bidirectional", "layers"), _SHAPES)
def test_forward_unpacked_equals_model_forward(bidirectional: bool, layers: int) -> None:
    model = _model(bidirectional, layers)
    ids, lengths = _batch([1, 17, 5, 9, 16])
    with torch.no_grad():
        torch.testing.assert_close(forward_unpacked(model, ids, lengths), model(ids, lengths), atol=1e-5, rtol=1e-4)


def test_reverse_within_length_keeps_padding_in_place() -> None:
    x = torch.arange(8, dtype=torch.float32).view(2, 4, 1)
    out = reverse_within_length(x, torch.tensor([4, 2]))
    assert out.squeeze(2).tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
