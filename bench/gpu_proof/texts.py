"""Real reviews for the proof: a stratified sample of the test split, tokenized on every core in spawned processes.

Worker processes import only the runtime's tokenizer (no torch, no ONNX Runtime), so they start in well under a
second and never touch the GPU.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from lstm_onnx.runtime.datasets import LabelledTexts, stratified_sample
from lstm_onnx.runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab, require_tokens

__all__ = ["CHUNK", "EncodePool", "encode_chunk", "sample_reviews"]

# Texts per task sent to a worker: large enough that sending them costs little, small enough to spread the work.
CHUNK = 256

# One tokenizer per worker process, built once by the pool's initializer (a process-local, never the parent's).
_WORKER: tuple[Tokenizer, Vocab] | None = None


def sample_reviews(test: LabelledTexts, count: int, seed: int) -> LabelledTexts:
    """A stratified sample of ``count`` reviews (all of them when there are fewer), in a seeded random order.

    Readers return IMDB sorted by path (every ``neg`` review before the first ``pos``) and ``stratified_sample``
    keeps that order; shuffled, any first ``k`` reviews are a fair mix of labels and lengths.
    """
    sample = stratified_sample(test, min(count, len(test)), seed)
    order = np.random.default_rng(seed).permutation(len(sample))
    return sample.subset(order)


def _init_worker(config: dict[str, Any], rules: dict[str, Any], tokens: list[str]) -> None:
    global _WORKER
    _WORKER = (Tokenizer(TokenizerConfig.from_dict(config), rules=rules), Vocab(tokens))


def encode_chunk(
    texts: Sequence[str], tokenizer: Tokenizer | None = None, vocab: Vocab | None = None
) -> list[list[int]]:
    """Token ids per text, with the worker's tokenizer unless one is given.

    Raises:
        EmptyInputError: A text has no tokens (the one rule everywhere).
    """
    if tokenizer is None or vocab is None:
        if _WORKER is None:
            raise RuntimeError("encode_chunk needs a tokenizer: give one, or call it in an EncodePool worker.")
        tokenizer, vocab = _WORKER
    encoded = []
    for position, text in enumerate(texts):
        tokens = tokenizer.tokenize(text)
        require_tokens(tokens, position, text, "the proof's reviews")
        encoded.append(vocab.encode(tokens))
    return encoded


class EncodePool:
    """Tokenize and encode texts with ``workers`` spawned processes (in this process when ``workers`` is 1).

    Args:
        tokenizer: The bundle's tokenizer (settings and rules are sent to the workers).
        vocab: The bundle's vocabulary.
        workers: Processes.

    Attributes:
        start_s: Seconds the workers took to start (excluded from rates measured through ``iter_encode``).
    """

    def __init__(self, tokenizer: Tokenizer, vocab: Vocab, workers: int) -> None:
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.workers = workers
        self.start_s = 0.0
        self._pool: Any = None

    def __enter__(self) -> EncodePool:
        if self.workers > 1:
            started = time.perf_counter()
            context = multiprocessing.get_context("spawn")  # never fork a process that holds a CUDA context
            initargs = (self.tokenizer.config.to_dict(), self.tokenizer.rules, self.vocab.itos)
            self._pool = context.Pool(self.workers, initializer=_init_worker, initargs=initargs)
            # One task per worker: the pool is ready once every worker has imported and built its tokenizer.
            self._pool.map(encode_chunk, [["warm up"]] * self.workers, chunksize=1)
            self.start_s = time.perf_counter() - started
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def iter_encode(self, texts: Sequence[str]) -> Iterator[list[list[int]]]:
        """Encoded chunks of ``CHUNK`` texts, in order, as the workers finish them."""
        chunks = [list(texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)]
        if self._pool is None:
            for chunk in chunks:
                yield encode_chunk(chunk, self.tokenizer, self.vocab)
            return
        yield from self._pool.imap(encode_chunk, chunks, chunksize=1)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, in order."""
        return [ids for chunk in self.iter_encode(texts) for ids in chunk]
