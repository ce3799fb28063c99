"""Verification inputs: a generated grid of awkward shapes, and real texts in length buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.batching import length_buckets
from lstm_onnx.runtime.tokenizer import PAD_ID, UNK_ID

__all__ = ["INVARIANCE_PAIRS", "Case", "bucket_cases", "generated_cases"]


@dataclass(frozen=True)
class Case:
    """One batch to compare.

    Attributes:
        name: Names the case in reports and errors.
        ids: int64 (B, T) right-padded token ids.
        lengths: int64 (B) true lengths.
        targets: int64 (B) gold label ids for real data, else ``None``.
        text_index: int64 (B) positions of the texts in the dataset, else ``None``.
    """

    name: str
    ids: NDArray[np.int64]
    lengths: NDArray[np.int64]
    targets: NDArray[np.int64] | None = None
    text_index: NDArray[np.int64] | None = None


# (case, row) pairs whose logits must agree with each other on every backend: the same text alone and inside a
# batch of longer texts. Padding or batch neighbours must never change a score.
INVARIANCE_PAIRS = ((("alone", 0), ("alone_in_longer_batch", 3)),)


def _batch(name: str, lengths: Sequence[int], rng: np.random.Generator, vocab_size: int) -> Case:
    lens = np.asarray(lengths, dtype=np.int64)
    # Ids from UNK_ID upwards: unknown words are real input; PAD_ID only appears as padding.
    ids = rng.integers(UNK_ID, vocab_size, size=(len(lens), int(lens.max())), dtype=np.int64)
    ids[np.arange(ids.shape[1])[None, :] >= lens[:, None]] = PAD_ID
    return Case(name, ids, lens)


def generated_cases(vocab_size: int, seed: int = 0) -> list[Case]:
    """The generated grid: batch sizes 1, 2, 7, 32, 128; lengths 1 to 2,100; mixed, unsorted, equal, one-token.

    Args:
        vocab_size: Ids are drawn from [1, vocab_size).
        seed: Seeds ids and lengths.

    Returns:
        The cases, named by what they exercise.
    """
    rng = np.random.default_rng(seed)
    unsorted7 = rng.permutation(np.arange(1, 81))[:7]
    different32 = rng.permutation(np.arange(1, 65))[:32]
    cases = [
        _batch("b1_len1", [1], rng, vocab_size),
        _batch("b1_len2100", [2100], rng, vocab_size),
        _batch("b2_mixed", [5, 37], rng, vocab_size),
        _batch("b2_long_and_short", [3, 2050], rng, vocab_size),
        _batch("b7_unsorted", unsorted7.tolist(), rng, vocab_size),
        _batch("b7_one_token", [1] * 7, rng, vocab_size),
        _batch("b32_same_length", [33] * 32, rng, vocab_size),
        _batch("b32_all_different", different32.tolist(), rng, vocab_size),
        _batch("b128_mixed", rng.integers(1, 301, size=128).tolist(), rng, vocab_size),
    ]
    alone = _batch("alone", [9], rng, vocab_size)
    longer = _batch("alone_in_longer_batch", [40, 120, 17, 9, 200, 64, 31], rng, vocab_size)
    longer.ids[3] = PAD_ID
    longer.ids[3, :9] = alone.ids[0]
    return [*cases, alone, longer]


def bucket_cases(
    token_ids: Sequence[Sequence[int]],
    targets: Sequence[int] | None,
    batch_size: int,
    prefix: str = "data",
) -> list[Case]:
    """Real texts in batches of similar length (sorted by length, then chunked) so padding stays small.

    Args:
        token_ids: Encoded texts, each non-empty.
        targets: Gold label ids aligned with ``token_ids``, or ``None``.
        batch_size: Texts per batch.
        prefix: Case name prefix; cases are named ``<prefix>[first:last]`` by sorted position.

    Returns:
        The cases; ``text_index`` maps rows back to positions in ``token_ids``.
    """
    cases = []
    start = 0
    for index in length_buckets([len(t) for t in token_ids], batch_size):
        lens = np.array([len(token_ids[i]) for i in index], dtype=np.int64)
        ids = np.full((len(index), int(lens.max())), PAD_ID, dtype=np.int64)
        for row, i in enumerate(index):
            ids[row, : lens[row]] = token_ids[i]
        gold = None if targets is None else np.array([targets[i] for i in index], dtype=np.int64)
        name = f"{prefix}[{start}:{start + len(index)}]"
        cases.append(Case(name, ids, lens, gold, index))
        start += len(index)
    return cases
