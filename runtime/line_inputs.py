"""Texts for ``lstm-onnx predict``, one per argument or line, each with its id and where it came from.

A line that cannot be read (bad JSON, no string text) is an ``Item`` carrying its error rather than an exception,
so ``--on-error skip|null`` can report it and carry on; ``--on-error fail`` raises it (``ErrorPolicy``, the same for
a classifier and a tagger). Input formats:

- ``text``: one text per line (the line ending removed); ids are line numbers.
- ``jsonl``: one JSON object per line with a string ``text_field``; ``id_field`` is carried to the output when
  present (any JSON scalar), else the line number is the id.
- ``auto``: ``jsonl`` for ``.jsonl``/``.ndjson`` files; on stdin, ``jsonl`` when the first non-blank line is a JSON
  object holding ``text_field``, else ``text``.

Files and stdin are read as UTF-8 with a leading byte-order mark dropped; undecodable bytes survive as lone
surrogates (``surrogateescape``) rather than failing the whole stream.

With ``max_chars``, no line is ever held whole past what the limit needs, so a 1 GB line costs what a
``max_chars`` one does: a longer text line is an error item, or with ``truncate`` its first ``max_chars + 1``
characters (the classifier then cuts and flags it); a JSON Lines line longer than ``JSONL_LINE_CHARS(max_chars)``
(room for every character escaped) is an error item, since a cut object cannot be parsed.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

from lstm_onnx.runtime.errors import DataError, InputError
from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE

__all__ = [
    "INPUT_FORMATS",
    "ON_ERROR",
    "ErrorPolicy",
    "Item",
    "items_from_args",
    "jsonl_line_chars",
    "predict_items",
    "read_items",
]

INPUT_FORMATS = ("auto", "text", "jsonl")
ON_ERROR = ("fail", "skip", "null")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
# What a JSON value is, in JSON's words (messages name "null", not "NoneType").
_JSON_KINDS = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "an object",
}


@dataclass(frozen=True)
class Item:
    """One text to classify, or the reason its line could not be read.

    Attributes:
        text: The text (``None`` when ``error`` is set).
        id: Carried to the output: the record's id field, else the 1-based line or argument number.
        where: ``"line 7 of reviews.jsonl"`` / ``"argument 2"``, for messages.
        error: Why the line could not be read, or ``None``.
    """

    text: str | None
    id: Any
    where: str
    error: str | None = None


def items_from_args(texts: Iterable[str]) -> Iterator[Item]:
    """Texts given on the command line; ids are 1-based argument numbers."""
    for number, text in enumerate(texts, start=1):
        yield Item(text, number, f"argument {number}")


def jsonl_line_chars(max_chars: int) -> int:
    """Longest JSON Lines line read for a ``max_chars`` text: each character may be a 6-character ``\\uXXXX`` escape,
    plus 64 KiB for the other fields."""
    return 6 * max_chars + 65_536


def read_items(
    source: str,
    input_format: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    max_chars: int | None = None,
    truncate: bool = False,
) -> Iterator[Item]:
    """Stream items from a file, or stdin for ``-``, never loading it whole.

    Args:
        source: A file path, or ``-`` for stdin.
        input_format: ``auto``, ``text`` or ``jsonl`` (see the module docstring).
        text_field: JSONL key holding the text.
        id_field: JSONL key holding the id, carried to the output.
        max_chars: Character limit per text (``None``: lines are read whole); bounds the memory of one line.
        truncate: Keep the start of an over-long text line instead of reporting it.

    Yields:
        One ``Item`` per line (blank lines of JSONL are skipped; in ``text`` every line is a text).

    Raises:
        DataError: The file does not exist, or the format is unknown.
    """
    if input_format not in INPUT_FORMATS:
        raise DataError(f"Input format {input_format!r} is unknown; use one of {', '.join(INPUT_FORMATS)}.")
    if source == "-":
        stream: TextIO = (
            io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape", newline="")
            if hasattr(sys.stdin, "buffer")
            else sys.stdin
        )
        yield from _items(stream, "stdin", input_format, (text_field, id_field), (max_chars, truncate))
        return
    path = Path(source)
    # Not is_file(): a named pipe or `--file <(command)` (/dev/fd/N) is read as the stream it is.
    if not path.exists() or path.is_dir():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"Input file {path} {what}; give a text or .jsonl file, or - for stdin.")
    if input_format == "auto":
        input_format = "jsonl" if path.suffix.lower() in _JSONL_SUFFIXES else "text"
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        yield from _items(fh, path.name, input_format, (text_field, id_field), (max_chars, truncate))


def _bounded_lines(stream: TextIO, limit: int | None) -> Iterator[tuple[str, bool]]:
    """Lines of at most ``limit`` characters, each with whether it was longer (the rest is read and dropped)."""
    if limit is None:
        for line in stream:
            yield line, False
        return
    while line := stream.readline(limit):
        if len(line) < limit or line.endswith("\n"):
            yield line, False
            continue
        while (rest := stream.readline(1 << 16)) and not rest.endswith(("\n", "\r")):
            pass
        yield line, True


def _items(
    stream: TextIO, name: str, input_format: str, fields: tuple[str, str], limits: tuple[int | None, bool]
) -> Iterator[Item]:
    text_field, id_field = fields
    max_chars, truncate = limits
    text_limit = None if max_chars is None else max_chars + 2  # room for the text's first extra character and \r\n
    json_limit = None if max_chars is None else jsonl_line_chars(max_chars)
    bounded = _bounded_lines(stream, json_limit if input_format != "text" else text_limit)
    over: set[int] = set()

    def numbered() -> Iterator[str]:
        for number, (raw, cut) in enumerate(bounded, start=1):
            if cut:
                over.add(number)
            yield raw

    lines: Iterator[str] = numbered()
    if input_format == "auto":  # stdin: look at the first non-blank line, then replay it
        head: list[str] = []
        for raw in lines:
            head.append(raw)
            if raw.strip():
                break
        input_format = "jsonl" if head and _is_record(head[-1], text_field) else "text"
        lines = itertools.chain(head, lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark is not text
        where = f"line {number} of {name}"
        if number in over and (input_format != "text" or not truncate):
            over.discard(number)
            yield Item(None, number, where, _too_long(input_format, max_chars or 0))
        elif input_format == "text":
            yield Item(line if number not in over else line[: (max_chars or 0) + 1], number, where)
        elif line.strip():
            yield _record(line, number, where, text_field, id_field)


def _too_long(input_format: str, max_chars: int) -> str:
    if input_format == "text":
        return f"Text has more than {max_chars} characters (max_chars); raise --max-chars or pass --truncate"
    return (
        f"the line is longer than {jsonl_line_chars(max_chars)} characters, too long for a text of max_chars="
        f"{max_chars}; raise --max-chars"
    )


def _is_record(line: str, text_field: str) -> bool:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and text_field in obj


def _record(line: str, number: int, where: str, text_field: str, id_field: str) -> Item:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as err:
        return Item(None, number, where, f"not JSON ({str(err)[:80]}); each line must be an object with {text_field!r}")
    if not isinstance(obj, dict):
        return Item(None, number, where, f"a JSON {type(obj).__name__}, not an object with {text_field!r}")
    ident = obj.get(id_field, number)
    if not isinstance(ident, (str, int, float)) or isinstance(ident, bool):
        return Item(None, number, where, f"{id_field!r} must be a string or number, got {json.dumps(ident)[:40]}")
    text = obj.get(text_field)
    if not isinstance(text, str):
        shown = "missing" if text_field not in obj else _JSON_KINDS.get(type(text), "not a string")
        return Item(None, ident, where, f"{text_field!r} is {shown}, not a string")
    return Item(text, ident, where)


class ResultModel(Protocol[R_co]):
    """A model that answers texts one result each, an error in place of a text that breaks the input rules.

    ``TextClassifier`` (results: ``Prediction``) and ``TokenTagger`` (``TaggedSentence``) are such models.
    """

    def iter_results(
        self, texts: Iterable[Any], chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[R_co | InputError | TypeError]:
        """Per text, in input order: its result, or the error it raised."""
        ...


def predict_items(
    model: ResultModel[R], items: Iterable[Item], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[tuple[Item, R | str]]:
    """Classify or tag items in order, pairing each with its result or the reason it has none.

    Unreadable lines and texts that break the input rules (empty, too long, non-finite scores) yield their message
    instead of raising, so the caller decides: fail, skip or write a null record. At most ``chunk_size`` texts are
    held at once.

    Args:
        model: The classifier or tagger.
        items: From ``read_items`` or ``items_from_args``.
        chunk_size: Texts read ahead and batched together (``batch_size`` answers a pipe batch by batch).

    Yields:
        ``(item, result)`` or ``(item, error message)``, in input order.
    """
    pending: deque[Item] = deque()

    def texts() -> Iterator[str]:
        for item in items:
            pending.append(item)
            if item.text is not None:
                yield item.text

    for result in model.iter_results(texts(), chunk_size=chunk_size):
        while pending[0].text is None:  # unreadable lines ahead of this text keep their place
            item = pending.popleft()
            yield item, item.error or "unreadable"
        item = pending.popleft()
        if isinstance(result, (InputError, TypeError)):
            yield item, _without_position(result)
        else:
            yield item, result
    while pending:
        item = pending.popleft()
        yield item, item.error or "unreadable"


# "Text at position 3 has ...", "the text(s) at position(s) [3, 9]": the library counts among the texts it saw.
_POSITION = re.compile(r" at position(?:\(s\)|s)? (?:\[[^\]]*\]|\d+)")


def _without_position(err: InputError | TypeError) -> str:
    # The CLI names the line or argument instead of the library's position.
    return _POSITION.sub("", str(err), count=1)


class ErrorPolicy:
    """What ``predict`` does with a line it cannot score (``--on-error``), for a classifier and a tagger alike.

    ``fail`` raises at the first such line (the lines before it are already written); ``skip`` reports it and leaves
    it out; ``null`` reports it and keeps it in place, for the caller to write as a record of its error.

    Args:
        mode: ``fail``, ``skip`` or ``null``.
        report: Called with ``"line 7 of in.jsonl: <why>"`` for each line skipped or kept as null (the CLI prints it
            on stderr as it happens).

    Attributes:
        failed: How many lines could not be scored so far.
    """

    def __init__(self, mode: str, report: Callable[[str], None]) -> None:
        if mode not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {mode!r}.")
        self.mode = mode
        self.report = report
        self.failed = 0

    def apply(self, outcomes: Iterable[tuple[Item, R | str]]) -> Iterator[tuple[Item, R | None, str | None]]:
        """Pass ``predict_items``' outcomes on as ``(item, result, None)``, or ``(item, None, error)`` under ``null``.

        Raises:
            InputError: Under ``fail``, at the first line without a result, naming it.
        """
        for item, result in outcomes:
            if not isinstance(result, str):
                yield item, result, None
                continue
            self.failed += 1
            if self.mode == "fail":
                raise InputError(f"{item.where}: {result} (--on-error skip or null carries on past such lines)")
            self.report(f"{item.where}: {result}")
            if self.mode == "null":
                yield item, None, result

    def check(self) -> None:
        """Raise once all lines are written if any could not be scored, so the exit code says so.

        Raises:
            InputError: Some lines were skipped or written as nulls.
        """
        if self.failed:
            kept = " as null records" if self.mode == "null" else ""
            raise InputError(
                f"{self.failed} text(s) could not be scored (each reported above on stderr); the output holds the "
                f"others{kept}."
            )
