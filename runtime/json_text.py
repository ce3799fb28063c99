"""JSON from text this toolkit did not write (input lines, request bodies, run and bundle files).

``json.loads`` fails three ways: ``JSONDecodeError`` for bad syntax, a plain ``ValueError`` for an integer past
Python's digit limit (4,300 digits), and ``RecursionError`` for absurd nesting (``[[[[...``). Callers that caught
only the first let the others out as tracebacks (or HTTP 500s); ``parse_json`` turns all three into ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_json"]


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
