"""length_buckets: the one length-bucketing rule (predictor, training, verification and bench batches)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_onnx.runtime.batching import length_buckets, text_chunks
from lstm_onnx.runtime.errors import ConfigError


def test_length_buckets_sorts_stably_and_cuts_by_rows() -> None:
    batches = length_buckets([5, 1, 3, 1, 5], batch_size=2)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 0], [4]]
    assert all(b.dtype == np.int64 for b in batches)


def test_length_buckets_caps_padded_tokens() -> None:
    # Widths 2, 2, 3, 10: rows 0-1 fit (2 × 2), adding the 3 would make 3 × 3 = 9 > 8, the 10 goes alone.
    batches = length_buckets([2, 2, 3, 10], batch_size=8, max_tokens=8)
    assert [b.tolist() for b in batches] == [[0, 1], [2], [3]]


def test_length_buckets_of_nothing_is_no_batch() -> None:
    assert length_buckets([], batch_size=4) == []


@pytest.mark.parametrize(("batch_size", "max_tokens"), [(0, None), (4, 0)])
def test_length_buckets_rejects_bad_sizes(batch_size: int, max_tokens: int | None) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        length_buckets([1, 2], batch_size=batch_size, max_tokens=max_tokens)


@given(
    lengths=st.lists(st.integers(1, 300), max_size=80),
    batch_size=st.integers(1, 16),
    max_tokens=st.one_of(st.none(), st.integers(1, 600)),
)
def test_length_buckets_covers_every_text_once_within_limits(
    lengths: list[int], batch_size: int, max_tokens: int | None
) -> None:
    batches = length_buckets(lengths, batch_size, max_tokens)
    flat = [int(i) for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) <= batch_size
        # A text longer than the cap still gets a batch, alone.
        assert max_tokens is None or len(batch) * width <= max_tokens or len(batch) == 1


@pytest.mark.parametrize("chunk_size", [0, 10**9])
def test_text_chunks_bounds_the_read_ahead(chunk_size: int) -> None:
    with pytest.raises(ConfigError, match=r"chunk_size must be an int in 1\.\.1,048,576"):
        next(text_chunks(["a"], chunk_size))
