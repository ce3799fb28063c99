"""Text → tokens → ids: normalisation, spaCy's rule-based English tokenizer (as rules), the vocabulary, batching.

The data flow is ``normalize`` → ``Tokenizer.tokenize`` → tokens → ``Vocab.encode`` → ids →
``batch_encode`` → ``input_ids`` int64 (B, T) + ``lengths`` int64 (B). Training and serving share it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.errors import BundleError, ConfigError, EmptyInputError, InputTooLongError
from lstm_onnx.runtime.json_text import MAX_VOCAB_FILE_BYTES, read_text_capped
from lstm_onnx.runtime.limits import MAX_TEXT_CHARS, check_range
from lstm_onnx.runtime.tokenizer_rules import RuleTokenizer, dump_spacy_rules

__all__ = [
    "PAD",
    "PAD_ID",
    "UNK",
    "UNK_ID",
    "Tokenizer",
    "TokenizerConfig",
    "Vocab",
    "DEFAULT_MAX_CHARS",
    "batch_encode",
    "limit_chars",
    "normalize",
    "require_tokens",
]

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1

# Characters per text at inference unless the caller raises it: 7x IMDB's longest review (13,704 characters);
# bounds one text's tokenizing (< 1 s even when every character is a token) and the model's activations.
DEFAULT_MAX_CHARS = 100_000

# IMDB reviews carry HTML line breaks ("<br /><br />"); they are layout, not words.
_BREAK_TAG = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)


def normalize(text: str) -> str:
    """Replace HTML line breaks by spaces and collapse every run of Unicode whitespace to one space.

    Collapsing whitespace means spaCy never emits whitespace tokens, and no token ever holds a
    newline (so ``vocab.txt`` stays one token per line).

    Args:
        text: Raw text, any Unicode.

    Returns:
        The normalised text, stripped at both ends.
    """
    return " ".join(_BREAK_TAG.sub(" ", text).split())


@dataclass(frozen=True)
class TokenizerConfig:
    """Tokenizer settings saved with every run directory and bundle.

    Attributes:
        lowercase: Lowercase tokens after tokenizing (GloVe 6B is uncased).
        max_length: Hard limit on tokens per text at inference; ``None`` reads every token.
        max_chars: Hard limit on characters per text at inference, checked before tokenizing; ``None``: none.
    """

    lowercase: bool = True
    max_length: int | None = None
    max_chars: int | None = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        for name in ("max_length", "max_chars"):
            # Bounded from a bundle too: a hostile max_chars would let one line of input be read whole.
            check_range(name, getattr(self, name), 1, MAX_TEXT_CHARS, optional=True)
        if not isinstance(self.lowercase, bool):
            raise ConfigError(f"lowercase must be true or false, got {self.lowercase!r:.40}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerConfig:
        """Build from a dict, rejecting unknown keys (named in the error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown tokenizer setting(s) {unknown}; expected some of {sorted(known)}.")
        return cls(**data)


class Tokenizer:
    """spaCy's rule-based English tokenizer (``spacy.blank("en")``) after ``normalize``, then lowercasing.

    Tokens come from ``RuleTokenizer``, a pure-Python replay of spaCy's algorithm that gives the same token
    texts. With ``rules`` (a bundle's ``tokenizer.json``) spaCy is never imported; without, the rules are read
    from the installed spaCy on first use (training and export time).

    Args:
        config: Tokenizer settings.
        rules: Rules from ``dump_spacy_rules``/``load_rules``; ``None`` reads them from spaCy lazily.
    """

    def __init__(self, config: TokenizerConfig | None = None, rules: dict[str, Any] | None = None) -> None:
        self.config = config or TokenizerConfig()
        self._rules = rules
        self._rule_tokenizer: RuleTokenizer | None = RuleTokenizer(rules) if rules is not None else None

    @property
    def rules(self) -> dict[str, Any]:
        """The tokenizer rules in use (JSON-able; the exporter saves them as ``tokenizer.json``)."""
        if self._rules is None:
            self._rules = dump_spacy_rules()
        return self._rules

    def _engine(self) -> RuleTokenizer:
        if self._rule_tokenizer is None:
            self._rule_tokenizer = RuleTokenizer(self.rules)
        return self._rule_tokenizer

    def tokenize(self, text: str, max_tokens: int | None = None) -> list[str]:
        """Split one text into tokens (lowercased when configured).

        Args:
            text: Raw text.
            max_tokens: Keep only the first ``max_tokens`` tokens and stop tokenizing soon after them.

        Returns:
            The tokens; empty for empty or whitespace-only text.
        """
        tokens = self._engine()(normalize(text), max_tokens)
        if self.config.lowercase:
            return [tok.lower() for tok in tokens]
        return tokens

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[list[str]]:
        """Tokenize many texts lazily, in order.

        Args:
            texts: Raw texts.
            batch_size: Kept for API compatibility; texts are tokenized one by one.

        Yields:
            One token list per text.
        """
        for text in texts:
            yield self.tokenize(text)


class Vocab:
    """Token ↔ id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Args:
        tokens: All tokens in id order; must start with ``<pad>``, ``<unk>`` and hold no duplicates.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        if list(tokens[:2]) != [PAD, UNK]:
            raise ValueError(f"A vocabulary must start with {PAD!r}, {UNK!r}; got {list(tokens[:2])}.")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dupes = [t for t, n in Counter(self.itos).items() if n > 1][:5]
            raise ValueError(f"Duplicate tokens in vocabulary: {dupes}.")

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Build from tokenized training texts.

        Tokens are ordered by descending frequency, ties broken alphabetically, so the same data always
        gives the same ids.

        Args:
            token_lists: Tokenized texts.
            min_freq: Keep tokens seen at least this often.
            max_size: Keep at most this many tokens, specials included (``None``: no cap).

        Returns:
            The vocabulary.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}.")
        if max_size is not None and max_size < 3:
            raise ValueError(f"max_size must be >= 3 (two specials and a word), got {max_size}.")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        ranked = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        return cls([PAD, UNK, *ranked])

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids, unknown tokens to ``UNK_ID``."""
        stoi = self.stoi
        return [stoi.get(tok, UNK_ID) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to tokens."""
        return [self.itos[i] for i in ids]

    def save(self, path: Path) -> None:
        """Write one token per line, line number = id (UTF-8, ``\\n`` line ends).

        Written to a temporary name beside ``path``, then renamed: a full disk never leaves half a vocabulary.
        """
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fh.write("\n".join(self.itos) + "\n")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> Vocab:
        """Read a vocabulary written by ``save``.

        Raises:
            BundleError: The file is missing or not a valid vocabulary.
        """
        try:
            text = read_text_capped(Path(path), MAX_VOCAB_FILE_BYTES)
        except FileNotFoundError as err:
            raise BundleError(f"Vocabulary file {path} does not exist.") from err
        except ValueError as err:  # over the cap, or not UTF-8
            raise BundleError(f"Vocabulary file {path} cannot be used: {err}.") from err
        if not text.endswith("\n"):
            raise BundleError(f"Vocabulary file {path} is truncated (no final newline).")
        try:
            return cls(text[:-1].split("\n"))
        except ValueError as err:
            raise BundleError(f"Vocabulary file {path} is invalid: {err}") from err


def require_tokens(tokens: Sequence[str], position: int, text: str, where: str = "") -> None:
    """The one rule for a text with no tokens, in training, prediction, evaluation, verification and benchmarks.

    An LSTM cannot read zero steps and a made-up answer would hide the problem, so such a text (empty,
    whitespace-only, or only HTML line breaks) is an error naming it.

    Raises:
        EmptyInputError: ``tokens`` is empty; names ``position`` (0-based) and ``where`` it came from.
    """
    if not tokens:
        source = f" of {where}" if where else ""
        raise EmptyInputError(
            f"Text at position {position}{source} is empty or whitespace-only ({text[:20]!r}); "
            "every text needs at least one token. Remove it or fill it in.",
            position=position,
        )


def limit_chars(text: str, position: int, max_chars: int | None, truncate: bool) -> tuple[str, bool]:
    """The one character limit, checked before tokenizing so no text costs more than ``max_chars`` allows.

    Returns:
        The text (its first ``max_chars`` characters when ``truncate``) and whether it was cut.

    Raises:
        InputTooLongError: The text is longer than ``max_chars`` and ``truncate`` is off; names ``position``.
    """
    if max_chars is None or len(text) <= max_chars:
        return text, False
    if not truncate:
        raise InputTooLongError(
            f"Text at position {position} has {len(text)} characters; max_chars is {max_chars}. "
            "Shorten it, raise the limit (--max-chars, max_chars=) or pass --truncate (truncate=True).",
            position=position,
        )
    return text[:max_chars], True


def batch_encode(
    ids: Sequence[Sequence[int]],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Right-pad id sequences with ``PAD_ID`` into one batch.

    Args:
        ids: B non-empty id sequences.

    Returns:
        ``input_ids`` int64 (B, T) with T the longest length, and ``lengths`` int64 (B).

    Raises:
        EmptyInputError: A sequence is empty (an LSTM cannot read zero tokens); names its position.
    """
    lengths = np.fromiter((len(seq) for seq in ids), dtype=np.int64, count=len(ids))
    if lengths.size and lengths.min() == 0:
        pos = int(np.argmin(lengths))
        raise EmptyInputError(f"Text at position {pos} has no tokens; every text needs at least one.")
    width = int(lengths.max()) if lengths.size else 0
    batch = np.full((len(ids), width), PAD_ID, dtype=np.int64)
    for row, seq in enumerate(ids):
        batch[row, : len(seq)] = seq
    return batch, lengths
