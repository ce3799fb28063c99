"""Tokens → the tagger's inputs: word ids, character ids and lengths. Training and serving share it.

Words are looked up lowercased (GloVe 6B is uncased; the case is not lost, since the character encoder reads
every token with its case). Characters are ids in a ``Vocab`` of single characters (``chars.txt``, ``<pad>`` = 0,
``<unk>`` = 1). A token longer than ``max_word_chars`` keeps its first and last ``max_word_chars // 2``
characters: prefixes and suffixes are what tells a part of speech, and the cap keeps a batch's (B, T, W) char
tensor bounded whatever the input holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.errors import EmptyInputError
from lstm_onnx.runtime.tokenizer import PAD, PAD_ID, UNK, UNK_ID, Vocab

__all__ = ["DEFAULT_MAX_WORD_CHARS", "MAX_WORD_CHARS_LIMIT", "TaggerInputs", "build_char_vocab", "encode", "word_key"]

# The character vocabulary's file in a run directory and a tagging bundle.
DEFAULT_MAX_WORD_CHARS = 24
# Upper bound of max_word_chars, in training and in a bundle: it sizes the (B, T, W) character tensor.
MAX_WORD_CHARS_LIMIT = 256


def word_key(token: str) -> str:
    """How a token is looked up in the word vocabulary: lowercased."""
    return token.lower()


def _clip(token: str, max_chars: int) -> str:
    if len(token) <= max_chars:
        return token
    half = max_chars // 2
    return token[:half] + token[len(token) - (max_chars - half) :]


def build_char_vocab(token_lists: Iterable[Iterable[str]], min_freq: int = 1) -> Vocab:
    """A vocabulary of the characters in the training tokens (frequency order, ties alphabetical).

    Characters that are line breaks are left out: ``chars.txt`` holds one character per line.
    """
    counts: Counter[str] = Counter()
    for tokens in token_lists:
        for token in tokens:
            counts.update(token)
    for special in ("\n", "\r", PAD, UNK):
        counts.pop(special, None)
    ranked = sorted((c for c, n in counts.items() if n >= min_freq), key=lambda c: (-counts[c], c))
    return Vocab([PAD, UNK, *ranked])


class TaggerInputs:
    """One padded batch of sentences in the ``TAG_IO`` layout.

    Attributes:
        input_ids: int64 (B, T) word ids, right-padded with ``PAD_ID``.
        char_ids: int64 (B, T, W) character ids, 0 past each token's characters and at padded positions.
        lengths: int64 (B) tokens per sentence, each >= 1.
    """

    def __init__(self, input_ids: NDArray[np.int64], char_ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> None:
        self.input_ids = input_ids
        self.char_ids = char_ids
        self.lengths = lengths


def encode(
    sentences: Sequence[Sequence[str]], words: Vocab, chars: Vocab, max_word_chars: int = DEFAULT_MAX_WORD_CHARS
) -> TaggerInputs:
    """Encode token lists into one padded batch.

    Args:
        sentences: B token lists, each non-empty; tokens are non-empty strings.
        words: The word vocabulary (looked up with ``word_key``).
        chars: The character vocabulary.
        max_word_chars: Most characters read per token (longer tokens keep both ends).

    Returns:
        The batch, W being the longest (clipped) token.

    Raises:
        EmptyInputError: A sentence has no tokens, or a token is empty; names its position.
    """
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    if lengths.size and lengths.min() == 0:
        raise EmptyInputError(f"Sentence at position {int(np.argmin(lengths))} has no tokens; it needs at least one.")
    clipped = [[_clip(tok, max_word_chars) for tok in s] for s in sentences]
    width = max((len(tok) for s in clipped for tok in s), default=0)
    if width == 0 and lengths.size:
        raise EmptyInputError("Every token is empty; tokens need at least one character.")
    steps = int(lengths.max()) if lengths.size else 0
    ids = np.full((len(sentences), steps), PAD_ID, dtype=np.int64)
    char_ids = np.full((len(sentences), steps, max(width, 1)), PAD_ID, dtype=np.int64)
    wstoi, cstoi = words.stoi, chars.stoi
    for b, (sentence, short) in enumerate(zip(sentences, clipped, strict=True)):
        for t, (token, kept) in enumerate(zip(sentence, short, strict=True)):
            if not kept:
                raise EmptyInputError(f"Token {t} of sentence {b} is empty; tokens need at least one character.")
            ids[b, t] = wstoi.get(word_key(token), UNK_ID)
            char_ids[b, t, : len(kept)] = [cstoi.get(c, UNK_ID) for c in kept]
    return TaggerInputs(ids, char_ids, lengths)
