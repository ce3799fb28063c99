"""A CoNLL-U reader (plain or ``.gz``) that yields the syntactic words of each sentence with their tags.

UD evaluation with gold tokenization scores syntactic words: a multiword token's range line (``3-4 don't``)
is the surface form only and carries no tag, and empty nodes (``8.1``) belong to enhanced dependencies, not to
the word sequence. Both are skipped here; every integer-ID line is one word. Malformed input raises ``DataError``
naming the file and line.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lstm_onnx.runtime.errors import DataError

__all__ = ["READ_ERRORS", "TAGSETS", "ConlluSentence", "format_conllu", "open_text", "read_conllu"]

# Column of each tag set in a word line (0-based): UPOS is column 4, XPOS column 5 of the ten.
TAGSETS = {"upos": 3, "xpos": 4}
_COLUMNS = 10
# What reading a file from open_text raises when its bytes are not UTF-8 or not intact gzip (a corrupt deflate
# stream is zlib.error, a cut-off one EOFError, a bad header or CRC BadGzipFile).
READ_ERRORS = (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error)


@dataclass(frozen=True)
class ConlluSentence:
    """One sentence's syntactic words and their tags.

    Attributes:
        words: Word forms (FORM column), in order.
        tags: One tag per word from the chosen tag set.
        sent_id: The ``# sent_id`` comment, when present.
        line: Line number of the sentence's first word (for messages).
    """

    words: list[str]
    tags: list[str]
    sent_id: str | None
    line: int


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file, decompressing it when its name ends in ``.gz``; a leading byte-order mark is dropped."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def read_conllu(path: Path | str, tagset: str = "upos") -> Iterator[ConlluSentence]:
    """Read the sentences of a CoNLL-U file lazily.

    Args:
        path: A ``.conllu`` file, or a gzip-compressed one (``.gz``).
        tagset: ``"upos"`` (column 4) or ``"xpos"`` (column 5).

    Yields:
        One ``ConlluSentence`` per sentence with at least one word.

    Raises:
        DataError: The file is missing, not UTF-8 or gzip, or a line is malformed (wrong column count, a
            non-numeric or out-of-order ID, an empty form or tag); the message names the file and line.
    """
    if tagset not in TAGSETS:
        raise DataError(f"Unknown tag set {tagset!r}; expected one of {sorted(TAGSETS)}.")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CoNLL-U file {path} does not exist; give a .conllu or .conllu.gz file.")
    column = TAGSETS[tagset]
    try:
        with open_text(path) as fh:
            yield from _parse(fh, path, column)
    except READ_ERRORS as err:
        raise DataError(f"{path} is not readable UTF-8 CoNLL-U ({err}); check the file is complete.") from err


def _parse(lines: TextIO, path: Path, column: int) -> Iterator[ConlluSentence]:
    words: list[str] = []
    tags: list[str] = []
    sent_id: str | None = None
    start = 0
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if words:
                yield ConlluSentence(words, tags, sent_id, start)
            words, tags, sent_id = [], [], None
            continue
        if line.startswith("#"):
            if line.startswith("# sent_id") and "=" in line:
                sent_id = line.split("=", 1)[1].strip()
            continue
        cols = line.split("\t")
        where = f"{path}, line {number}"
        if len(cols) != _COLUMNS:
            raise DataError(f"{where}: expected {_COLUMNS} tab-separated columns, got {len(cols)}: {line[:80]!r}.")
        ident = cols[0]
        if "." in ident or "-" in ident:
            # Empty node or multiword range: not a syntactic word of the sequence.
            if not all(_is_number(part) for part in ident.replace(".", "-").split("-")):
                raise DataError(f"{where}: bad word ID {ident!r}; expected N, N-M or N.M.")
            continue
        if not _is_number(ident):
            raise DataError(f"{where}: bad word ID {ident!r}; expected a positive integer.")
        if int(ident) != len(words) + 1:
            raise DataError(f"{where}: word ID {ident} out of order; expected {len(words) + 1}.")
        form, tag = cols[1], cols[column]
        if not form or not tag:
            raise DataError(f"{where}: empty FORM or tag column.")
        if not words:
            start = number
        words.append(form)
        tags.append(tag)
    if words:
        yield ConlluSentence(words, tags, sent_id, start)


def _is_number(text: str) -> bool:
    # ASCII digits only: str.isdigit also accepts '²' or '①', which int() then refuses.
    return text.isascii() and text.isdigit()


def format_conllu(words: list[str], tags: list[str], sent_id: str | None = None, tagset: str = "upos") -> str:
    """One sentence as CoNLL-U text: ten columns, the tag in its tag set's column, ``_`` elsewhere.

    Args:
        words: Word forms.
        tags: One tag per word.
        sent_id: Written as a ``# sent_id`` comment when given.
        tagset: ``"upos"`` or ``"xpos"``.

    Returns:
        The sentence's lines, ending with the blank line that closes it.
    """
    column = TAGSETS[tagset]
    lines = [f"# sent_id = {sent_id}"] if sent_id is not None else []
    for i, (word, tag) in enumerate(zip(words, tags, strict=True), start=1):
        cols = [str(i), word.replace("\t", " ")] + ["_"] * (_COLUMNS - 2)
        cols[column] = tag
        lines.append("\t".join(cols))
    return "\n".join(lines) + "\n\n"
