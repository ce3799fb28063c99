"""Stream ``(ids, texts)`` chunks out of a JSONL, CSV or Parquet file without loading it whole.

Each row needs a text (``text_column``); its ``id_column`` value is carried through when present, else the row's
0-based position in the file becomes its id. Formats are chosen by suffix: ``.jsonl``/``.ndjson``, ``.csv``/``.tsv``,
``.parquet``/``.pq`` (Parquet needs pyarrow, from ``pip install 'lstm-onnx[ray]'``).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.errors import DataError, MissingDependencyError
from lstm_onnx.runtime.json_text import parse_json

__all__ = ["INPUT_FORMATS", "Chunk", "input_format", "read_chunks"]

INPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
INPUT_FORMATS[".pq"] = "parquet"
PYARROW_MISSING = "Reading Parquet needs pyarrow, which is not installed. Install: pip install 'lstm-onnx[ray]'."

# (ids, texts) of consecutive rows.
Chunk = tuple[list[Any], list[Any]]


def input_format(path: Path) -> str:
    """``"jsonl"``, ``"csv"`` or ``"parquet"`` from the file's suffix.

    Raises:
        DataError: The file is missing or its suffix is none of these.
    """
    if not path.is_file():
        raise DataError(f"Input file {path} does not exist; give a .jsonl, .csv or .parquet file.")
    fmt = INPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Input file {path} has suffix {path.suffix!r}; batch scoring reads {', '.join(sorted(INPUT_FORMATS))}."
        )
    return fmt


def read_chunks(path: Path, chunk_size: int, text_column: str = "text", id_column: str = "id") -> Iterator[Chunk]:
    """Rows of ``path`` in file order, ``chunk_size`` at a time.

    Args:
        path: A .jsonl, .csv or .parquet file.
        chunk_size: Rows per chunk.
        text_column: Field or column holding the text.
        id_column: Field or column holding the id (optional; default ids are 0-based row positions).

    Yields:
        ``(ids, texts)`` lists of at most ``chunk_size`` rows.

    Raises:
        DataError: The file is missing, malformed, or a row lacks its text.
        MissingDependencyError: A Parquet file and no pyarrow.
    """
    fmt = input_format(path)
    rows = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt](path, text_column, id_column)
    position = 0
    while chunk := list(itertools.islice(rows, chunk_size)):
        ids = [position + i if row_id is None else row_id for i, (row_id, _) in enumerate(chunk)]
        yield ids, [text for _, text in chunk]
        position += len(chunk)


def _jsonl_rows(path: Path, text_column: str, id_column: str) -> Iterator[tuple[Any, Any]]:
    # utf-8-sig: a byte-order mark is not text (nor part of the first key).
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                obj = parse_json(line)
            except ValueError as err:
                raise DataError(f"Line {number} of {path} is not JSON ({err}); each line must be an object.") from err
            if not isinstance(obj, dict) or text_column not in obj:
                raise DataError(f"Line {number} of {path} has no {text_column!r} field; expected an object with it.")
            yield obj.get(id_column), obj[text_column]


def _csv_rows(path: Path, text_column: str, id_column: str) -> Iterator[tuple[Any, Any]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # utf-8-sig: with a byte-order mark the first column would be named "\ufeffid", and ids silently lost.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            if text_column not in (reader.fieldnames or []):
                raise DataError(f"{path} has no {text_column!r} column (header: {reader.fieldnames}); name it.")
            for row in reader:
                yield row.get(id_column), row[text_column]
        except csv.Error as err:  # e.g. a field over csv's 131,072-character limit, a NUL byte
            raise DataError(
                f"{path}, line {reader.line_num + 1}: not readable CSV ({err}); "
                "give texts this long as JSONL or Parquet."
            ) from err


def _parquet_rows(path: Path, text_column: str, id_column: str) -> Iterator[tuple[Any, Any]]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as err:
        raise MissingDependencyError(PYARROW_MISSING) from err
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own ArrowInvalid/OSError family for unreadable files
        raise DataError(f"{path} is not a readable Parquet file ({err}).") from err
    names = parquet.schema_arrow.names
    if text_column not in names:
        raise DataError(f"{path} has no {text_column!r} column (columns: {names}); name it.")
    columns = [text_column] + ([id_column] if id_column in names else [])
    for batch in parquet.iter_batches(batch_size=4096, columns=columns):
        data: dict[str, list[Any]] = batch.to_pydict()
        ids = data.get(id_column, [None] * batch.num_rows)
        yield from zip(ids, data[text_column], strict=True)
