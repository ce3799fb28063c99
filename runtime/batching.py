"""Length bucketing: the one rule every path uses to cut texts into padded batches with little padding.

Texts are ordered by length (stable, so equal lengths keep their input order) and cut into batches of at most
``batch_size`` rows and, when ``max_tokens`` is given, at most ``max_tokens`` padded tokens (rows × the batch's
longest text). Sorted ascending, a batch is as wide as its last text, so the padded size is known as each row
joins. A text longer than ``max_tokens`` still gets a batch of its own: the cap bounds padding, never drops text.

Before that, a stream of texts is read a chunk at a time (``text_chunks``), so memory stays flat however long it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.limits import MAX_CHUNK_SIZE, check_range

__all__ = ["length_buckets", "text_chunks"]


def length_buckets(
    lengths: Sequence[int] | NDArray[np.integer], batch_size: int, max_tokens: int | None = None
) -> list[NDArray[np.int64]]:
    """Row indices per batch, shortest texts first.

    Args:
        lengths: int (N) token count of each text.
        batch_size: Most rows per batch (>= 1).
        max_tokens: Most padded tokens per batch (rows × longest length); ``None``: no cap.

    Returns:
        int64 (B_k) positions into ``lengths`` per batch; together they hold every position exactly once.

    Raises:
        ValueError: ``batch_size`` or ``max_tokens`` < 1.
    """
    if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
        raise ValueError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}.")
    sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
    order = np.argsort(sizes, kind="stable")
    if max_tokens is None:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[NDArray[np.int64]] = []
    start = 0
    for end, row in enumerate(order):
        rows = end - start
        if rows and (rows >= batch_size or (rows + 1) * int(sizes[row]) > max_tokens):
            batches.append(order[start:end])
            start = end
    if start < len(order):
        batches.append(order[start:])
    return batches


def text_chunks(texts: Iterable[Any], chunk_size: int) -> Iterator[tuple[int, list[Any]]]:
    """Read ``texts`` ``chunk_size`` at a time, for a model's ``iter_results``.

    Yields:
        ``(offset, chunk)``: the position of the chunk's first text among all texts, and at most ``chunk_size`` texts.

    Raises:
        TypeError: ``texts`` is one string (an iterable of characters), not texts.
        ConfigError: ``chunk_size`` is not in 1..``MAX_CHUNK_SIZE`` (a ``ValueError``).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of str, got one str; wrap it in a list: [text].")
    check_range("chunk_size", chunk_size, 1, MAX_CHUNK_SIZE)
    iterator = iter(texts)
    offset = 0
    while chunk := list(itertools.islice(iterator, chunk_size)):
        yield offset, chunk
        offset += len(chunk)
