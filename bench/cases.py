"""Benchmark inputs: padded batches of real reviews (their real length mix, bucketed by length) or of a fixed length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.batching import length_buckets
from lstm_onnx.runtime.tokenizer import Tokenizer, Vocab, batch_encode, require_tokens

__all__ = ["REAL", "Case", "bucket_encode", "encode_texts", "fixed_case", "real_case"]

REAL = "real"
_FIRST_WORD_ID = 2  # after <pad> = 0 and <unk> = 1


@dataclass(frozen=True)
class Case:
    """The batches one setting is timed on; repetition ``r`` runs ``batches[r % len(batches)]``.

    Attributes:
        batch_size: B (the last real batch may be smaller only if texts ran out, which ``real_case`` avoids).
        seq_len: T for fixed-length inputs, or ``"real"``.
        batches: ``(ids int64 (B, T), lengths int64 (B))`` pairs.
    """

    batch_size: int
    seq_len: int | str
    batches: list[tuple[NDArray[np.int64], NDArray[np.int64]]]

    def batch(self, repetition: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The batch for a repetition."""
        return self.batches[repetition % len(self.batches)]

    @property
    def texts(self) -> int:
        """Texts over all batches."""
        return sum(len(lengths) for _, lengths in self.batches)

    @property
    def tokens(self) -> int:
        """Real (unpadded) tokens over all batches."""
        return int(sum(int(lengths.sum()) for _, lengths in self.batches))


def encode_texts(texts: Sequence[str], tokenizer: Tokenizer, vocab: Vocab) -> list[list[int]]:
    """Token ids per text.

    Raises:
        EmptyInputError: A text has no tokens (the one rule everywhere: never dropped silently).
    """
    encoded = []
    for position, text in enumerate(texts):
        tokens = tokenizer.tokenize(text)
        require_tokens(tokens, position, text, "the benchmark texts")
        encoded.append(vocab.encode(tokens))
    return encoded


def bucket_encode(
    ids: Sequence[Sequence[int]], batch_size: int, max_tokens: int | None = None
) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Padded batches the way the predictor cuts them (``runtime.batching.length_buckets``).

    Args:
        ids: Token ids per text.
        batch_size: Most rows per batch.
        max_tokens: Most padded tokens per batch (the predictor's ``max_batch_tokens``); ``None``: no cap.

    Returns:
        ``(ids int64 (B, T), lengths int64 (B))`` per batch, shortest texts first.
    """
    buckets = length_buckets([len(t) for t in ids], batch_size, max_tokens)
    return [batch_encode([ids[i] for i in rows]) for rows in buckets]


def real_case(ids: Sequence[Sequence[int]], batch_size: int, batches: int, seed: int = 0) -> Case:
    """Length-bucketed batches of real texts: the first ``batch_size × batches`` texts, sorted by length, cut into
    batches of ``batch_size`` (little padding, as the predictor batches), then shuffled so consecutive repetitions
    see different lengths.

    Args:
        ids: Encoded texts in random order (their lengths are the real length mix).
        batch_size: B.
        batches: How many batches (cycled when fewer than the repetitions).
        seed: Shuffles the batch order.

    Raises:
        ValueError: Fewer than ``batch_size`` texts.
    """
    if len(ids) < batch_size:
        raise ValueError(f"real_case needs at least batch_size={batch_size} texts, got {len(ids)}.")
    count = min(len(ids) // batch_size, batches) * batch_size
    out = bucket_encode(ids[:count], batch_size)
    order = np.random.default_rng(seed).permutation(len(out))
    return Case(batch_size, REAL, [out[i] for i in order])


def fixed_case(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0) -> Case:
    """One batch of random word ids, every text exactly ``seq_len`` tokens (no padding)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(_FIRST_WORD_ID, max(vocab_size, _FIRST_WORD_ID + 1), size=(batch_size, seq_len), dtype=np.int64)
    return Case(batch_size, seq_len, [(ids, np.full(batch_size, seq_len, dtype=np.int64))])
