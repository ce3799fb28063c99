"""Tagged sentences → padded torch batches for the tagger (length-bucketed for training, in order for evaluation)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from lstm_onnx.runtime.tagging_data import TaggedSentences
from lstm_onnx.runtime.tagging_encode import encode
from lstm_onnx.runtime.tokenizer import Vocab

__all__ = ["IGNORE_INDEX", "TagBatch", "TagEncoder", "batch_order"]

# Target at padded positions: cross-entropy skips it.
IGNORE_INDEX = -100


@dataclass
class TagBatch:
    """One batch: inputs as the model takes them and the targets.

    Attributes:
        rows: Indices of the sentences in the data, in batch order.
        ids: int64 (B, T); char_ids: int64 (B, T, W); lengths: int64 (B).
        targets: int64 (B, T) tag ids, ``IGNORE_INDEX`` at padded positions.
    """

    rows: list[int]
    ids: torch.Tensor
    char_ids: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor


class TagEncoder:
    """Encodes sentences of one data set with fixed vocabularies and tag ids.

    Args:
        data: The sentences.
        words: Word vocabulary; chars: character vocabulary; labels: tags in id order.
        max_word_chars: Characters read per token.
    """

    def __init__(self, data: TaggedSentences, words: Vocab, chars: Vocab, labels: list[str], max_word_chars: int):
        self.data = data
        self.words, self.chars, self.max_word_chars = words, chars, max_word_chars
        index = {tag: i for i, tag in enumerate(labels)}
        # Tags the tagger does not know (possible in dev/test only) can never be predicted: they count as errors.
        self.targets = [np.array([index.get(t, IGNORE_INDEX - 1) for t in row], dtype=np.int64) for row in data.tags]
        self.lengths = [len(row) for row in data.tokens]

    def batch(self, rows: list[int]) -> TagBatch:
        """The padded batch of the sentences ``rows``."""
        enc = encode([self.data.tokens[r] for r in rows], self.words, self.chars, self.max_word_chars)
        targets = np.full(enc.input_ids.shape, IGNORE_INDEX, dtype=np.int64)
        for b, r in enumerate(rows):
            targets[b, : self.lengths[r]] = self.targets[r]
        return TagBatch(
            rows,
            torch.from_numpy(enc.input_ids),
            torch.from_numpy(enc.char_ids),
            torch.from_numpy(enc.lengths),
            torch.from_numpy(targets),
        )

    def eval_batches(self, batch_size: int) -> Iterator[TagBatch]:
        """Batches sorted by length (little padding); ``rows`` say where each sentence belongs."""
        order = sorted(range(len(self.lengths)), key=self.lengths.__getitem__)
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])


def batch_order(lengths: list[int], batch_size: int, bucket_batches: int, rng: np.random.Generator) -> list[list[int]]:
    """Training batches: shuffle, sort each chunk of ``bucket_batches`` batches by length, shuffle the batches.

    Args:
        lengths: Tokens per sentence.
        batch_size: Sentences per batch.
        bucket_batches: Batches per sorted chunk (1: no bucketing).
        rng: Seeded generator (one per epoch, so a resumed run repeats the order).

    Returns:
        Row indices per batch.
    """
    perm: NDArray[np.int64] = rng.permutation(len(lengths))
    chunk = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, len(perm), chunk):
        part = sorted(perm[start : start + chunk].tolist(), key=lengths.__getitem__)
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
