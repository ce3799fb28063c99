"""``TextClassifier``: texts → tokens → ids → padded batches → ONNX Runtime → softmax → ``Prediction``.

Input rules, the same in every path (library, CLI, every provider):

- Every item must be a ``str``; anything else raises ``TypeError`` naming its position.
- A text with no tokens (empty, whitespace-only, or only HTML line breaks) raises ``EmptyInputError`` naming its
  position: an LSTM cannot read zero tokens and a made-up prediction would hide the problem.
- Any Unicode is accepted (emoji, RTL scripts, combining marks, control characters, NUL, lone surrogates).
- A text longer than ``max_chars`` characters (default ``DEFAULT_MAX_CHARS``, recorded in the bundle) raises
  ``InputTooLongError`` before anything is tokenized, unless ``truncate=True``, which keeps its first ``max_chars``
  characters. Time and memory per text are therefore bounded; raise ``max_chars`` for longer documents.
- With a ``max_length`` (from the bundle, or given at load), a longer text raises ``InputTooLongError``
  (length, limit, hint) unless ``truncate=True``, which keeps the first ``max_length`` tokens (tokenizing stops
  soon after them), sets ``Prediction.truncated`` and warns.
- Non-finite logits (inf/NaN) raise ``NonFiniteOutputError`` naming the texts; a score is always a number.
- ``texts`` may be any iterable, read once (a generator or ``map`` works).

Batching sorts texts by token count, cuts length-homogeneous batches (at most ``batch_size`` texts and
``max_batch_tokens`` padded tokens), pads per batch and restores input order. ``lengths`` makes the graph ignore
padding, so results do not depend on batch size or order (tests/runtime/test_predictor.py checks it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.batching import length_buckets, text_chunks
from lstm_onnx.runtime.bundle import Bundle, load_bundle
from lstm_onnx.runtime.bundle_format import CLASSIFY_TASK
from lstm_onnx.runtime.errors import BundleError, InputError, InputTooLongError, NonFiniteOutputError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_BATCH_TOKENS, MAX_TEXT_CHARS, check_range
from lstm_onnx.runtime.relabel import LabelNames, rename_labels
from lstm_onnx.runtime.session import runtime_session_config
from lstm_onnx.runtime.tokenizer import batch_encode, limit_chars, require_tokens

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CHUNK_SIZE", "Prediction", "TextClassifier", "non_finite_error", "softmax"]

DEFAULT_BATCH_SIZE = 32
# Padded tokens (B × T) per session call. It bounds memory when one text is very long, and it is the speed
# setting that matters most: ORT's LSTM computes every row of a batch until the batch's longest text ends, so a
# batch of 32 mixed-length reviews pays for its padding. Measured end to end on chunks of 64 random IMDB reviews
# (benchmarks/README.md, batch size end to end): 2,048 gives 2.06x (fp32) and 1.79x (int8) the throughput of
# the former 65,536, while 16-token texts still go 32 per call.
DEFAULT_MAX_BATCH_TOKENS = 2_048
# Texts read ahead by iter_predict: enough to sort into good batches, small enough to keep memory flat.
DEFAULT_CHUNK_SIZE = 1024


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one text.

    Attributes:
        label: The most probable label.
        score: Its probability.
        probabilities: Every label's probability (they sum to 1).
        truncated: Whether the text was cut to ``max_length`` tokens first.
    """

    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"label", "score", "probabilities", "truncated"}``."""
        return {
            "label": self.label,
            "score": self.score,
            "probabilities": dict(self.probabilities),
            "truncated": self.truncated,
        }


def softmax(logits: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """Numerically stable softmax over the last axis (computed in float64).

    Args:
        logits: (B, C) any float dtype.

    Returns:
        probs float32 (B, C), each row summing to 1.
    """
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z.astype(np.float32)


class TextClassifier:
    """A loaded bundle ready to classify texts; safe to share between threads.

    Build it with ``TextClassifier.load``.

    Args:
        bundle: A bundle from ``load_bundle``.
        batch_size: Most texts per session call.
        max_length: Token limit; ``None`` uses the bundle's (which may be ``None``: no limit).
        truncate: Cut over-long texts to ``max_length`` tokens instead of raising.
        max_batch_tokens: Most padded tokens (B × T) per session call.
        max_chars: Character limit per text; ``None`` uses the bundle's (``DEFAULT_MAX_CHARS`` unless it says).

    Raises:
        BundleError: The bundle is a tagging bundle.
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_length: int | None = None,
        truncate: bool = False,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        max_chars: int | None = None,
    ) -> None:
        if bundle.task != CLASSIFY_TASK:
            # A tagging graph wants char_ids and answers per token: run through here, ORT would fail deep inside.
            raise BundleError(
                f"{bundle.path} is a tagging bundle (task {bundle.task!r}), not a classifier; score, serve and "
                "TextClassifier classify texts. Tag with `lstm-onnx predict`/`evaluate`, or lstm_onnx.load() in Python."
            )
        check_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        check_range("max_batch_tokens", max_batch_tokens, 1, MAX_BATCH_TOKENS)
        for name, value in (("max_length", max_length), ("max_chars", max_chars)):
            check_range(name, value, 1, MAX_TEXT_CHARS, optional=True)
        self.bundle = bundle
        self.batch_size = batch_size
        self.max_length = max_length if max_length is not None else bundle.max_length
        self.max_chars = max_chars if max_chars is not None else bundle.tokenizer.config.max_chars
        # truncate without a token limit still cuts texts to max_chars characters.
        self.truncate = truncate
        self.max_batch_tokens = max_batch_tokens
        self.labels: list[str] = list(bundle.labels)
        self._tokenizer = bundle.tokenizer
        self._vocab = bundle.vocab
        self._session = bundle.session

    @classmethod
    def load(
        cls,
        bundle: Path | str | Bundle,
        providers: str = "auto",
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_length: int | None = None,
        truncate: bool = False,
        max_chars: int | None = None,
        labels: LabelNames | None = None,
    ) -> TextClassifier:
        """Load and verify a bundle, build its session, and wrap it.

        Args:
            bundle: Bundle directory, a ``.zip``/``.tar.gz`` of one, or an already loaded ``Bundle`` (then
                ``providers``/``threads`` are unused).
            providers: ``"auto"``, ``"cpu"`` or ``"cuda"`` (``cuda`` never falls back silently).
            threads: ONNX Runtime intra-op threads for every call (``None``: one thread, and batches of 2+ rows
                and 512+ padded tokens cut into 2 parts run concurrently; see ``runtime_session_config``).
            batch_size: Most texts per session call.
            max_length: Token limit; ``None`` uses the bundle's.
            truncate: Cut over-long texts instead of raising ``InputTooLongError``.
            max_chars: Character limit per text; ``None`` uses the bundle's.
            labels: Rename the labels for this model only: every name in id order, or ``{old: new}``
                (``lstm-onnx relabel`` renames them in the bundle for good).

        Returns:
            The model.

        Raises:
            BundleError: The bundle is incomplete, changed or inconsistent, or a tagging bundle.
            ProviderError: The requested provider cannot run here.
            LabelError: ``labels`` does not fit the bundle's labels.
        """
        if not isinstance(bundle, Bundle):
            config = runtime_session_config(providers, threads)
            bundle = load_bundle(bundle, config)
        if labels is not None:
            bundle = replace(bundle, labels=rename_labels(bundle.labels, labels))
        return cls(bundle, batch_size=batch_size, max_length=max_length, truncate=truncate, max_chars=max_chars)

    @property
    def provider(self) -> str:
        """The execution provider running the graph."""
        return self._session.provider

    def predict(self, texts: Iterable[str]) -> list[Prediction]:
        """Classify texts.

        Args:
            texts: B texts (any iterable; read once).

        Returns:
            B predictions, in input order.

        Raises:
            TypeError: An item is not a ``str`` (names its position).
            EmptyInputError: A text has no tokens (names its position).
            InputTooLongError: A text exceeds ``max_chars`` or ``max_length`` and ``truncate`` is off.
            NonFiniteOutputError: The model produced inf/NaN logits for a text.
        """
        texts = self._materialise(texts)
        probs, truncated = self._predict(texts, 0)
        return self._to_predictions(probs, truncated)

    def predict_proba(self, texts: Iterable[str]) -> NDArray[np.float32]:
        """Class probabilities.

        Args:
            texts: B texts (any iterable; read once).

        Returns:
            probs float32 (B, C), columns in ``labels`` order; (0, C) for no texts.

        Raises:
            TypeError, EmptyInputError, InputTooLongError, NonFiniteOutputError: As ``predict``.
        """
        return self._predict(self._materialise(texts), 0)[0]

    def iter_predict(self, texts: Iterable[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Prediction]:
        """Classify a stream of texts lazily, ``chunk_size`` at a time, so memory stays flat.

        Args:
            texts: Any iterable of texts (a file, a generator).
            chunk_size: Texts read ahead and batched together.

        Yields:
            One prediction per text, in input order.

        Raises:
            TypeError, EmptyInputError, InputTooLongError, NonFiniteOutputError: As ``predict``, once every
                earlier text's prediction was yielded; positions count from the stream's start.
        """
        for result in self.iter_results(texts, chunk_size):
            if isinstance(result, Exception):
                raise result
            yield result

    def iter_results(
        self, texts: Iterable[Any], chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[Prediction | InputError | TypeError]:
        """Like ``iter_predict``, but a text that breaks the input rules yields its error instead of raising.

        Batch callers (``predict --on-error skip|null``) use it to report bad lines and carry on.

        Yields:
            Per text, in input order: its ``Prediction``, or the ``InputError``/``TypeError`` it raised.
        """
        for offset, chunk in text_chunks(texts, chunk_size):
            results: list[Prediction | InputError | TypeError] = []
            good: list[int] = []
            encoded: list[list[int]] = []
            cuts: list[bool] = []
            for i, text in enumerate(chunk):
                try:
                    ids, cut = self._encode_one(text, offset + i)
                except (InputError, TypeError) as err:
                    results.append(err)
                    continue
                results.append(_PENDING)
                good.append(i)
                encoded.append(ids)
                cuts.append(cut)
            self._warn_truncated([offset + i for i, cut in zip(good, cuts, strict=True) if cut])
            probs, bad = self._run(encoded)
            for row, i in enumerate(good):
                if row in bad:
                    results[i] = non_finite_error([offset + i])
                else:
                    results[i] = self._to_predictions(probs[row : row + 1], [cuts[row]])[0]
            yield from results

    # --- internals ------------------------------------------------------------------------------------

    @staticmethod
    def _materialise(texts: Iterable[Any]) -> list[Any]:
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of str, got one str; wrap it in a list: [text].")
        return list(texts)

    def _predict(self, texts: list[Any], offset: int) -> tuple[NDArray[np.float32], list[bool]]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"Text at position {offset + i} is {type(text).__name__}, not str.")
        ids: list[list[int]] = []
        truncated: list[bool] = []
        for i, text in enumerate(texts):
            seq, cut = self._encode_one(text, offset + i)
            ids.append(seq)
            truncated.append(cut)
        self._warn_truncated([offset + i for i, t in enumerate(truncated) if t])
        probs, bad = self._run(ids)
        if bad:
            raise non_finite_error([offset + row for row in sorted(bad)])
        return probs, truncated

    def _run(self, ids: list[list[int]]) -> tuple[NDArray[np.float32], set[int]]:
        """Probabilities per row, and the rows whose logits were not finite."""
        probs = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        bad: set[int] = set()
        for rows in length_buckets([len(seq) for seq in ids], self.batch_size, self.max_batch_tokens):
            batch, lengths = batch_encode([ids[i] for i in rows])
            logits = self._session.run(batch, lengths)
            finite = np.isfinite(logits).all(axis=1)
            if not finite.all():
                bad.update(int(rows[j]) for j in np.flatnonzero(~finite))
                logits = np.where(np.isfinite(logits), logits, 0.0)
            probs[rows] = softmax(logits)
        return probs, bad

    def _encode_one(self, text: Any, position: int) -> tuple[list[int], bool]:
        """Ids of one text and whether it was truncated; checks the character limit before tokenizing."""
        if not isinstance(text, str):
            raise TypeError(f"Text at position {position} is {type(text).__name__}, not str.")
        text, cut = limit_chars(text, position, self.max_chars, self.truncate)
        limit = self.max_length
        if limit is not None and self.truncate:
            tokens = self._tokenizer.tokenize(text, max_tokens=limit + 1)
        else:
            tokens = self._tokenizer.tokenize(text)
        require_tokens(tokens, position, text)
        if limit is not None and len(tokens) > limit:
            if not self.truncate:
                raise InputTooLongError(
                    f"Text at position {position} has {len(tokens)} tokens; max_length is {limit}. "
                    "Shorten it or pass --truncate (truncate=True).",
                    position=position,
                )
            tokens, cut = tokens[:limit], True
        return self._vocab.encode(tokens), cut

    def _warn_truncated(self, where: list[int]) -> None:
        if where:
            warnings.warn(
                f"{len(where)} text(s) longer than max_length={self.max_length} tokens or max_chars="
                f"{self.max_chars} characters were truncated (positions {where[:5]}{' …' if len(where) > 5 else ''}).",
                UserWarning,
                stacklevel=5,
            )

    def _to_predictions(self, probs: NDArray[np.float32], truncated: list[bool]) -> list[Prediction]:
        labels = self.labels
        best = probs.argmax(axis=1)
        return [
            Prediction(labels[int(b)], float(row[b]), dict(zip(labels, map(float, row), strict=True)), cut)
            for row, b, cut in zip(probs, best, truncated, strict=True)
        ]


# Placeholder for a text whose prediction is computed with its batch.
_PENDING = InputError("pending")


def non_finite_error(positions: list[int]) -> NonFiniteOutputError:
    """The error for texts whose logits were inf/NaN (classifier and tagger alike), naming their positions."""
    shown = f"{positions[:5]}{' …' if len(positions) > 5 else ''}"
    return NonFiniteOutputError(
        f"The model produced non-finite logits (inf/NaN) for the text(s) at position(s) {shown}; the bundle's "
        "weights are broken or the text drives the model out of range. Re-export the bundle or check the text.",
        position=positions[0],
    )
