"""TokenTagger: sentences → one tag per token, with probabilities, on ONNX Runtime (no torch).

Raw text is split by the bundle's own tokenizer (spaCy's English rules, case kept); pre-tokenized input is
tagged as given. Sentences are grouped by length, run in padded batches (``TAG_IO``), and returned in input order;
padded positions are never read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.batching import length_buckets, text_chunks
from lstm_onnx.runtime.bundle import Bundle, load_bundle
from lstm_onnx.runtime.contract import CHAR_IDS, CHAR_VOCAB_FILE, INPUT_IDS, LENGTHS, LOGITS
from lstm_onnx.runtime.errors import BundleError, EmptyInputError, InputError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_TEXT_CHARS, check_range
from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE, non_finite_error, softmax
from lstm_onnx.runtime.session import runtime_session_config
from lstm_onnx.runtime.tagging_encode import DEFAULT_MAX_WORD_CHARS, MAX_WORD_CHARS_LIMIT, encode
from lstm_onnx.runtime.tokenizer import limit_chars, require_tokens

__all__ = ["TAG_TASK", "TaggedSentence", "TokenTagger"]

TAG_TASK = "tag"
DEFAULT_TAG_BATCH_SIZE = 64
# Most padded tokens (B x T) per session call, so one long sentence is not padded against 63 others.
_MAX_BATCH_TOKENS = 4096


@dataclass(frozen=True)
class TaggedSentence:
    """One tagged sentence.

    Attributes:
        tokens: The tokens, as tagged.
        tags: One tag per token.
        scores: Probability of each chosen tag.
        probs: float32 (n, C) probabilities of every tag (``TokenTagger.labels`` order).
    """

    tokens: list[str]
    tags: list[str]
    scores: list[float]
    probs: NDArray[np.float32]

    def to_dict(self, labels: Sequence[str] | None = None) -> dict[str, Any]:
        """``{"tokens", "tags", "scores"}``; with ``labels``, also ``"probabilities"`` per token as ``{tag: p}``."""
        out: dict[str, Any] = {"tokens": self.tokens, "tags": self.tags, "scores": self.scores}
        if labels is not None:
            out["probabilities"] = [dict(zip(labels, map(float, row), strict=True)) for row in self.probs]
        return out


class TokenTagger:
    """A loaded tagging bundle; safe to share between threads. Build it with ``TokenTagger.load``.

    Args:
        bundle: A tagging bundle from ``load_bundle``.
        batch_size: Most sentences per session call.
        max_chars: Character limit per raw text (``tag``), checked before tokenizing; ``None`` uses the bundle's.
        truncate: Keep a longer text's first ``max_chars`` characters instead of raising ``InputTooLongError``.

    Raises:
        BundleError: The bundle is not a tagging bundle, or its character vocabulary is missing.
    """

    def __init__(
        self,
        bundle: Bundle,
        batch_size: int = DEFAULT_TAG_BATCH_SIZE,
        *,
        max_chars: int | None = None,
        truncate: bool = False,
    ) -> None:
        if bundle.task != TAG_TASK:
            raise BundleError(f"{bundle.path} is not a tagging bundle (config.json task is not 'tag').")
        check_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        check_range("max_chars", max_chars, 1, MAX_TEXT_CHARS, optional=True)
        self.bundle = bundle
        self.labels = list(bundle.labels)
        self.tagset = bundle.settings.tagset or "upos"
        self.batch_size = batch_size
        self.max_chars = max_chars if max_chars is not None else bundle.tokenizer.config.max_chars
        self.truncate = truncate
        if bundle.char_vocab is None:
            raise BundleError(f"{bundle.path} has no {CHAR_VOCAB_FILE}; run `lstm-onnx export` again.")
        self._chars = bundle.char_vocab
        model = bundle.settings.model
        width = model.get("max_word_chars", DEFAULT_MAX_WORD_CHARS)
        # A hostile value would cost gigabytes per batch of characters.
        if not isinstance(width, int) or isinstance(width, bool) or not 2 <= width <= MAX_WORD_CHARS_LIMIT:
            raise BundleError(
                f"{bundle.path}/config.json model.max_word_chars must be an int in 2..{MAX_WORD_CHARS_LIMIT}, got "
                f"{width!r:.40}; run `lstm-onnx export` again."
            )
        self._max_word_chars = width
        if len(self._chars) != model.get("char_vocab_size"):
            raise BundleError(
                f"{bundle.path / CHAR_VOCAB_FILE} has {len(self._chars)} characters but config.json says "
                f"{model.get('char_vocab_size')}; run `lstm-onnx export` again."
            )

    @classmethod
    def load(
        cls, path: Path | str, providers: str = "auto", threads: int | None = None, batch_size: int = 64
    ) -> TokenTagger:
        """Load and verify a tagging bundle directory and build its session.

        Raises:
            BundleError: The bundle is incomplete, changed, inconsistent or not a tagging bundle.
            ProviderError: The requested provider cannot run here.
        """
        config = runtime_session_config(providers, threads)
        return cls(load_bundle(path, config), batch_size=batch_size)

    @property
    def provider(self) -> str:
        """The execution provider running the graph."""
        return self.bundle.session.provider

    def tag(self, texts: Sequence[str]) -> list[TaggedSentence]:
        """Tokenize raw texts with the bundle's tokenizer and tag every token.

        Raises:
            TypeError: An item is not a string (position named).
            EmptyInputError: A text has no tokens (position named).
            InputTooLongError: A text is longer than ``max_chars`` and ``truncate`` is off.
        """
        if isinstance(texts, str):
            raise TypeError("tag() takes a list of texts; wrap a single text in a list.")
        token_lists = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"Text at position {i} is {type(text).__name__}, not str.")
            text, cut = limit_chars(text, i, self.max_chars, self.truncate)
            if cut:
                warnings.warn(f"Text at position {i} was cut to max_chars={self.max_chars} characters.", stacklevel=2)
            tokens = self.bundle.tokenizer.tokenize(text)
            require_tokens(tokens, i, text)
            token_lists.append(tokens)
        return self.tag_tokens(token_lists)

    def tag_tokens(self, sentences: Sequence[Sequence[str]]) -> list[TaggedSentence]:
        """Tag pre-tokenized sentences (gold tokenization, e.g. CoNLL-U words).

        Raises:
            TypeError: A sentence is not a list of strings (position named).
            EmptyInputError: A sentence or a token is empty (position named).
        """
        probs = self.predict_proba(sentences)
        out = []
        for tokens, p in zip(sentences, probs, strict=True):
            best = p.argmax(axis=1)
            out.append(
                TaggedSentence(
                    list(tokens), [self.labels[int(k)] for k in best], [float(p[i, k]) for i, k in enumerate(best)], p
                )
            )
        return out

    def predict_proba(self, sentences: Sequence[Sequence[str]]) -> list[NDArray[np.float32]]:
        """Tag probabilities per sentence: float32 (n_i, C) each, in input order.

        Raises:
            NonFiniteOutputError: The model produced inf/NaN logits for a sentence (positions named).
        """
        _check_sentences(sentences)
        lengths = [len(s) for s in sentences]
        result: list[NDArray[np.float32]] = [np.zeros((0, len(self.labels)), np.float32)] * len(sentences)
        bad: list[int] = []
        for rows in length_buckets(lengths, self.batch_size, _MAX_BATCH_TOKENS):
            logits = self.logits([sentences[r] for r in rows])
            for b, r in enumerate(rows):
                valid = logits[b, : lengths[r]]
                if not np.isfinite(valid).all():  # argmax over NaN would pick a tag and report a NaN score
                    bad.append(int(r))
                result[r] = softmax(valid)
        if bad:
            raise non_finite_error(sorted(bad))
        return result

    def logits(self, sentences: Sequence[Sequence[str]]) -> NDArray[np.floating[Any]]:
        """One session call: logits (B, T, C) of one padded batch (positions past a length are padding)."""
        enc = encode(sentences, self.bundle.vocab, self._chars, self._max_word_chars)
        feeds = {INPUT_IDS: enc.input_ids, CHAR_IDS: enc.char_ids, LENGTHS: enc.lengths}
        return self.bundle.session.run_batch(feeds, [LOGITS])[0]

    def iter_results(
        self, texts: Iterable[Any], chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[TaggedSentence | InputError | TypeError]:
        """Like ``tag`` over any iterable, a chunk at a time, but a text that breaks the input rules yields its error
        instead of raising, as ``TextClassifier.iter_results`` does (``predict --on-error skip|null``).

        Yields:
            Per text, in input order: its ``TaggedSentence``, or the ``InputError``/``TypeError`` ``tag`` raised for
            it (its position counted over all ``texts``).
        """
        for offset, chunk in text_chunks(texts, chunk_size):
            yield from self._chunk_results(chunk, offset)

    def _chunk_results(self, chunk: list[Any], offset: int) -> Iterator[TaggedSentence | InputError | TypeError]:
        # tag() stops at the first text that breaks a rule: tag the texts before it, yield its error, go on after it.
        # A text is tokenized at most twice, so a chunk costs linear time however many of its texts fail.
        start = 0
        while start < len(chunk):
            part = chunk[start:]
            try:
                tagged = self.tag(part)
            except (InputError, TypeError) as err:
                bad = getattr(err, "position", None)
                if bad is None:  # a TypeError names its position in words only: the first non-str
                    bad = next((i for i, text in enumerate(part) if not isinstance(text, str)), None)
                    if bad is None:
                        raise
                yield from self.tag(part[:bad]) if bad else []
                yield _moved(err, bad, offset + start + bad)
                start += bad + 1
                continue
            yield from tagged
            return


def _check_sentences(sentences: Sequence[Sequence[str]]) -> None:
    if isinstance(sentences, str):
        raise TypeError("tag_tokens() takes a list of token lists.")
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(f"Sentence at position {i} is {type(sentence).__name__}, not a list of tokens.")
        if not sentence:
            raise EmptyInputError(f"Sentence at position {i} has no tokens; it needs at least one.", i)
        for j, token in enumerate(sentence):
            if not isinstance(token, str):
                raise TypeError(f"Token {j} of sentence {i} is {type(token).__name__}, not str.")
            if not token:
                raise EmptyInputError(f"Token {j} of sentence {i} is empty; tokens need at least one character.", i)


def _moved(err: InputError | TypeError, position: int, new: int) -> InputError | TypeError:
    """The same error, naming the text's position among all texts instead of within the list ``tag`` saw."""
    message = str(err).replace(f"position {position}", f"position {new}", 1)
    return type(err)(message, new) if isinstance(err, InputError) else TypeError(message)
