"""trainer.data: cropping, encoding, length-bucketed batches, parallel tokenization."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tokenizer import TokenizerConfig, Vocab
from lstm_onnx.trainer import data as data_module
from lstm_onnx.trainer.data import (
    EncodedTexts,
    crop,
    encode,
    eval_batches,
    num_train_batches,
    tokenize_texts,
    train_batches,
)


@pytest.mark.parametrize(
    ("head", "tail", "expected"),
    [(None, 0, list("abcdefg")), (3, 2, list("abcfg")), (3, 0, list("abc")), (5, 2, list("abcdefg"))],
)
def test_crop_keeps_head_and_tail(head: int | None, tail: int, expected: list[str]) -> None:
    assert crop(list("abcdefg"), head, tail) == expected


def test_encode_rejects_unknown_label() -> None:
    with pytest.raises(DataError, match=r"label\(s\) \['x'\] not in the label set"):
        encode([["a"]], ["x"], Vocab(["<pad>", "<unk>", "a"]), ["neg", "pos"], "src")


def test_encode_rejects_a_text_with_no_tokens_naming_it() -> None:
    from lstm_onnx.runtime.errors import EmptyInputError

    with pytest.raises(EmptyInputError, match="position 0 of src"):
        encode([[]], ["pos"], Vocab(["<pad>", "<unk>", "a"]), ["neg", "pos"], "src")


def _encoded(n: int = 100) -> EncodedTexts:
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 10, size=int(rng.integers(1, 60))).astype(np.int64) for _ in range(n)]
    return EncodedTexts(ids, (np.arange(n) % 2).astype(np.int64))


def test_train_batches_cover_every_text_once_and_are_seeded() -> None:
    data = _encoded()
    batches = list(train_batches(data, 8, 4, seed=1))
    assert len(batches) == num_train_batches(len(data), 8, 4)
    assert sum(len(b.lengths) for b in batches) == len(data)
    again = list(train_batches(data, 8, 4, seed=1))
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(batches, again, strict=True))


def test_train_batches_bucketing_reduces_padding() -> None:
    data = _encoded(400)
    padded = lambda k: sum(b.ids.size for b in train_batches(data, 8, k, seed=0))  # noqa: E731
    assert padded(50) < 0.7 * padded(1)


def test_eval_batches_rows_map_back_to_texts() -> None:
    data = _encoded(30)
    for rows, batch in eval_batches(data, 7):
        for row, length, ids in zip(rows, batch.lengths, batch.ids, strict=True):
            assert ids[:length].tolist() == data.ids[row].tolist()


def test_tokenize_texts_parallel_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_module, "_PARALLEL_MIN_TEXTS", 0)
    monkeypatch.setattr(data_module, "_CHUNK", 3)
    texts = ["A great film!", "", "Don't watch it.<br />Awful.", "x " * 5, "Émouvant, vraiment."]
    config = TokenizerConfig()
    assert tokenize_texts(texts, config, workers=2) == tokenize_texts(texts, config, workers=1)
