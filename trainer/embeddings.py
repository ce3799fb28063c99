"""Pretrained word vectors: read GloVe / word2vec text files (plain or .gz), match them to a vocabulary."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tokenizer import PAD_ID, Vocab

__all__ = ["Coverage", "read_vectors", "vector_words"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Coverage:
    """Pretrained vectors matched to a vocabulary.

    Attributes:
        matrix: float32 (V, E) initial embedding; rows without a vector are drawn from N(0, std of the
            found vectors); the ``<pad>`` row is zero.
        found: Vocabulary tokens (specials excluded) that have a vector.
        total: Vocabulary tokens, specials excluded.
        dim: E, taken from the file.
    """

    matrix: NDArray[np.float32]
    found: int
    total: int
    dim: int

    @property
    def fraction(self) -> float:
        """Share of vocabulary tokens with a vector."""
        return self.found / self.total if self.total else 0.0


def _open_text(path: Path) -> TextIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def vector_words(path: Path | str) -> list[str]:
    """The words of a GloVe/word2vec text file, in file order (a word2vec header line is skipped).

    Raises:
        DataError: The file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Embeddings file {path} does not exist; check --embeddings.")
    words = []
    try:
        with _open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                word, _, rest = line.partition(" ")
                if line_no == 1 and rest.strip().isdigit() and word.isdigit():
                    continue
                if word and rest:
                    words.append(word)
    except (OSError, EOFError) as err:
        raise DataError(f"Cannot read embeddings file {path}: {err}.") from err
    return words


def read_vectors(path: Path | str, vocab: Vocab, seed: int) -> Coverage:
    """Read vectors for the tokens of ``vocab`` from a GloVe or word2vec text file.

    word2vec text files start with a "count dim" header line, GloVe files do not; both are accepted, plain
    or gzip-compressed. Only tokens in ``vocab`` are kept, so large files cost little memory.

    Args:
        path: The vectors file.
        vocab: The run's vocabulary.
        seed: Seed for the rows of tokens without a vector.

    Returns:
        The embedding matrix and its coverage of the vocabulary.

    Raises:
        DataError: The file is missing, empty, unreadable, its rows have inconsistent widths, or a vector of a
            vocabulary word holds a value that is not a finite float32 number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Embeddings file {path} does not exist; check --embeddings.")
    found: dict[int, NDArray[np.float32]] = {}
    dim: int | None = None
    try:
        with _open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])  # word2vec header: count dim
                    continue
                if len(parts) < 2:
                    continue
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) - 1 != dim:
                    raise DataError(
                        f"{path}, line {line_no}: {len(parts) - 1} values, expected {dim}; "
                        "is this a GloVe/word2vec text file?"
                    )
                idx = vocab.stoi.get(parts[0])
                if idx is not None and idx not in found:
                    found[idx] = _vector(parts, path, line_no)
    except (OSError, EOFError) as err:
        raise DataError(f"Cannot read embeddings file {path}: {err}.") from err
    if dim is None or dim < 1:
        raise DataError(f"Embeddings file {path} holds no vectors.")
    found.pop(PAD_ID, None)
    rng = np.random.default_rng(seed)
    # In float64: the squares of float32 values past ~1.8e19 overflow float32, and the std would be inf.
    std = float(np.std(np.stack(list(found.values())), dtype=np.float64)) if found else 0.1
    drawn = rng.normal(0.0, std, size=(len(vocab), dim))
    if not np.isfinite(drawn).all() or np.abs(drawn).max(initial=0.0) > _FLOAT32_MAX:
        raise DataError(
            f"The vectors in {path} are too large (standard deviation {std:.3g}): rows drawn for words without a "
            "vector overflow float32. Scale the vectors down."
        )
    matrix = drawn.astype(np.float32)
    for idx, vector in found.items():
        matrix[idx] = vector
    matrix[PAD_ID] = 0.0
    return Coverage(matrix, found=sum(1 for i in found if i >= 2), total=len(vocab) - 2, dim=dim)


def _vector(parts: list[str], path: Path, line_no: int) -> NDArray[np.float32]:
    """The float32 vector of one ``word v1 v2 ...`` line.

    Raises:
        DataError: A value is not a number, or not a finite float32 one (NaN, inf, or beyond ±3.4e38, which float32
            turns into inf): such a vector makes every loss NaN, and the run would train nothing.
    """
    try:
        values = np.asarray(parts[1:], dtype=np.float64)  # float64 first: a float32 cast would overflow silently
    except ValueError as err:
        raise DataError(f"{path}, line {line_no}: a value is not a number ({err}).") from err
    bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX)
    if bad.any():
        shown = parts[1 + int(np.argmax(bad))]
        raise DataError(
            f"{path}, line {line_no}: the vector of {parts[0]!r} holds {shown!r}, not a finite float32 number "
            "(NaN, inf and values beyond ±3.4e38 are refused: they make every loss NaN). Fix or remove that line."
        )
    return values.astype(np.float32)
