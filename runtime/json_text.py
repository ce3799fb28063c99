"""JSON and text from sources this toolkit did not write (input lines, request bodies, run and bundle files).

``json.loads`` fails three ways: ``JSONDecodeError`` for bad syntax, a plain ``ValueError`` for an integer past
Python's digit limit (4,300 digits), and ``RecursionError`` for absurd nesting (``[[[[...``). Callers that caught
only the first let the others out as tracebacks (or HTTP 500s); ``parse_json`` turns all three into ``ValueError``.

A file read whole is checked against a size cap first (``read_text_capped``): a hostile bundle's 300 MB manifest cost
650 MB of memory before anything looked at it.

JSON this toolkit writes goes through ``dump_json``: ``json.dumps`` writes NaN and Infinity by default, which no JSON
parser but Python's accepts, so a file holding one is not JSON at all; ``dump_json`` refuses them instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_JSON_FILE_BYTES",
    "MAX_VOCAB_FILE_BYTES",
    "dump_json",
    "finite_or_null",
    "non_finite_numbers",
    "parse_json",
    "read_text_capped",
]

# manifest.json, config.json and tokenizer.json are kilobytes (spaCy's English rules ~100 KB).
MAX_JSON_FILE_BYTES = 16 * 1024**2
# vocab.txt / chars.txt: 64 MiB is four million 15-byte tokens, ten times GloVe's 400,000 words.
MAX_VOCAB_FILE_BYTES = 64 * 1024**2


def parse_json(text: str | bytes) -> Any:
    """Parse one JSON document.

    Args:
        text: JSON text (bytes are decoded as UTF-8).

    Returns:
        The parsed value.

    Raises:
        ValueError: Not JSON, not UTF-8, an integer over the digit limit, or nested too deeply; the message says which.
    """
    try:
        return json.loads(text)
    except RecursionError as err:
        raise ValueError("nested too deeply to parse") from err


def read_text_capped(path: Path, max_bytes: int, encoding: str = "utf-8") -> str:
    """Read a whole text file no larger than ``max_bytes``.

    Raises:
        OSError: It cannot be read (``FileNotFoundError`` when missing).
        ValueError: It is larger than ``max_bytes``, or not valid text in ``encoding``.
    """
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path} is larger than {max_bytes:,} bytes, far more than such a file ever holds")
    return data.decode(encoding)


def non_finite_numbers(data: Any, where: str = "") -> list[str]:
    """Where ``data`` holds NaN or an infinity, as paths like ``history[0].val_loss`` (empty: none)."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [where or "value"]
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in non_finite_numbers(value, f"{where}.{key}".lstrip("."))]
    if isinstance(data, (list, tuple)):
        return [p for i, value in enumerate(data) for p in non_finite_numbers(value, f"{where}[{i}]")]
    return []


def dump_json(data: Any, indent: int | None = 2, ensure_ascii: bool = False) -> str:
    """``json.dumps`` that never writes NaN or Infinity (which make a file that is not JSON).

    Raises:
        ValueError: ``data`` holds a non-finite number; the message names where.
    """
    try:
        return json.dumps(data, indent=indent, ensure_ascii=ensure_ascii, allow_nan=False)
    except ValueError as err:
        bad = non_finite_numbers(data)
        raise ValueError(f"non-finite number(s) at {bad[:5]} cannot be written as JSON") from err


def finite_or_null(data: Any) -> Any:
    """``data`` with every NaN or infinity replaced by ``None`` (JSON ``null``), for reports that must be written even
    when what they measure failed (a parity report of a model that returns NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_null(value) for value in data]
    return data
