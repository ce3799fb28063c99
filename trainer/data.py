"""Labelled texts → token ids → length-bucketed, padded batches (numpy; torch-free so worker processes start fast).

The tokenizer is ``runtime.tokenizer``'s, the one serving uses. Large datasets are tokenized in worker
processes (spawned, so a parent that already runs torch threads is never forked).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.batching import length_buckets
from lstm_onnx.runtime.datasets import LabelledTexts
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab, batch_encode, normalize, require_tokens

__all__ = [
    "require_texts",
    "Batch",
    "EncodedTexts",
    "crop",
    "encode",
    "encode_texts",
    "eval_batches",
    "num_train_batches",
    "tokenize_texts",
    "train_batches",
]

# Below this many texts, starting worker processes costs more than it saves.
_PARALLEL_MIN_TEXTS = 2000
_CHUNK = 500


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids and class ids of a dataset, aligned by position.

    Attributes:
        ids: One int64 id array per text, each of length >= 1.
        targets: int64 (N) class ids.
    """

    ids: list[NDArray[np.int64]]
    targets: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> NDArray[np.int64]:
        """int64 (N) token counts."""
        return np.fromiter((len(seq) for seq in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass(frozen=True)
class Batch:
    """One padded batch: ``ids`` int64 (B, T), ``lengths`` int64 (B), ``targets`` int64 (B)."""

    ids: NDArray[np.int64]
    lengths: NDArray[np.int64]
    targets: NDArray[np.int64]


def _tokenize_chunk(args: tuple[TokenizerConfig, dict[str, Any] | None, list[str]]) -> list[str]:
    # One space-joined string per text: far cheaper to send back than lists of token strings. Tokens never
    # hold whitespace (normalize collapses it), so splitting on " " restores them exactly.
    config, rules, texts = args
    return [" ".join(tokens) for tokens in Tokenizer(config, rules=rules).pipe(texts)]


def tokenize_texts(
    texts: Sequence[str], config: TokenizerConfig, workers: int = 1, rules: dict[str, Any] | None = None
) -> list[list[str]]:
    """Tokenize texts in order, with ``workers`` processes when there are many texts.

    Args:
        texts: Raw texts.
        config: Tokenizer settings (the run's, saved with it).
        workers: Processes to use; 1 tokenizes in this process.
        rules: Tokenizer rules (``dump_spacy_rules``); ``None`` reads them from the installed spaCy.

    Returns:
        One token list per text.
    """
    if workers <= 1 or len(texts) < _PARALLEL_MIN_TEXTS:
        return list(Tokenizer(config, rules=rules).pipe(texts))
    chunks = [(config, rules, list(texts[i : i + _CHUNK])) for i in range(0, len(texts), _CHUNK)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_tokenize_chunk, chunks, chunksize=1)
    return [joined.split(" ") if joined else [] for part in parts for joined in part]


def crop(tokens: list[str], head: int | None, tail: int) -> list[str]:
    """Keep the first ``head`` and the last ``tail`` tokens of a text longer than ``head + tail``.

    Args:
        tokens: One text's tokens.
        head: Leading tokens kept; ``None`` keeps every token (no crop).
        tail: Trailing tokens kept in addition.

    Returns:
        The (possibly shorter) token list.
    """
    if head is None or len(tokens) <= head + tail:
        return tokens
    return tokens[:head] + (tokens[len(tokens) - tail :] if tail else [])


def require_texts(data: LabelledTexts) -> None:
    """Apply the no-tokens rule to every text at its position in the file, before splitting reorders them.

    A text has no tokens exactly when ``normalize`` leaves nothing: any non-space character becomes a token.

    Raises:
        EmptyInputError: Names the first such text's 0-based position in ``data.source``.
    """
    for position, text in enumerate(data.texts):
        if not normalize(text):
            require_tokens([], position, text, data.source)


def encode(
    token_lists: Sequence[list[str]], labels: Sequence[str], vocab: Vocab, label_names: Sequence[str], source: str
) -> EncodedTexts:
    """Map tokens to ids and labels to class ids.

    A text with no tokens is an error (``runtime.tokenizer.require_tokens``: the one rule of every path).

    Raises:
        DataError: A label is not in ``label_names``.
        EmptyInputError: A text has no tokens; names its position in ``source``.
    """
    label_ids = {name: i for i, name in enumerate(label_names)}
    unknown = sorted(set(labels) - set(label_ids))
    if unknown:
        raise DataError(
            f"{source}: label(s) {unknown[:5]} not in the label set {list(label_names)}; "
            "use data labelled like the training data."
        )
    for position, tokens in enumerate(token_lists):
        require_tokens(tokens, position, "", source)
    ids = [np.asarray(vocab.encode(tokens), dtype=np.int64) for tokens in token_lists]
    return EncodedTexts(ids, np.asarray([label_ids[label] for label in labels], dtype=np.int64))


def encode_texts(
    data: LabelledTexts, token_lists: Sequence[list[str]], vocab: Vocab, label_names: Sequence[str]
) -> EncodedTexts:
    """``encode`` for a ``LabelledTexts`` whose tokens are ``token_lists``."""
    return encode(token_lists, data.labels, vocab, label_names, data.source)


def _pad(data: EncodedTexts, rows: NDArray[np.int64]) -> Batch:
    ids, lengths = batch_encode([data.ids[i] for i in rows])
    return Batch(ids, lengths, data.targets[rows])


def train_batches(data: EncodedTexts, batch_size: int, bucket_batches: int, seed: int) -> Iterator[Batch]:
    """Shuffled, length-bucketed training batches; the same ``seed`` always gives the same batches.

    The texts are shuffled, cut into chunks of ``batch_size * bucket_batches``, each chunk is sorted by
    length and cut into batches (similar lengths, little padding), and the batch order is shuffled.

    Args:
        data: Encoded training texts.
        batch_size: Texts per batch (the last batch of a chunk may be smaller).
        bucket_batches: Batches per sorted chunk; 1 means plain shuffled batches.
        seed: Seed for this epoch's order (derive it from the run seed and the epoch).

    Yields:
        Batches.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    lengths = data.lengths()
    batches: list[NDArray[np.int64]] = []
    chunk = batch_size * bucket_batches
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        if bucket_batches > 1:
            batches.extend(part[rows] for rows in length_buckets(lengths[part], batch_size))
        else:
            batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    for b in rng.permutation(len(batches)):
        yield _pad(data, batches[b])


def num_train_batches(n: int, batch_size: int, bucket_batches: int) -> int:
    """How many batches ``train_batches`` yields for ``n`` texts."""
    chunk = batch_size * bucket_batches
    full, rest = divmod(n, chunk)
    return full * -(-chunk // batch_size) + -(-rest // batch_size)


def eval_batches(data: EncodedTexts, batch_size: int) -> Iterator[tuple[NDArray[np.int64], Batch]]:
    """Evaluation batches sorted by length (least padding); yields each batch's row positions with it."""
    for rows in length_buckets(data.lengths(), batch_size):
        yield rows, _pad(data, rows)
