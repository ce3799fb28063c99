"""Ceilings on every option that sizes a resource: threads, worker processes, batch sizes, text limits.

Every such option had a floor and no ceiling, so one mistyped or hostile value (``threads=10**6``) asked ONNX Runtime
for a million threads and grew to 22.7 GB before it was killed. Each ceiling here is far above any useful value and
far below what exhausts a machine; a value over it is one ``ConfigError`` line naming the option, before anything is
built.
"""

from __future__ import annotations

from typing import Any

from lstm_onnx.runtime.errors import ConfigError

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_BATCH_TOKENS",
    "MAX_CHUNK_SIZE",
    "MAX_TEXT_CHARS",
    "MAX_THREADS",
    "MAX_WORKERS",
    "check_range",
]

# Threads of one ONNX Runtime or torch thread pool: 256 is more cores than any one machine this serves on has.
MAX_THREADS = 256
# Worker processes (tokenizing, local and Ray scoring).
MAX_WORKERS = 1024
# Texts per model call (the CLI's --batch-size ceiling); padded tokens per call.
MAX_BATCH_SIZE = 65_536
MAX_BATCH_TOKENS = 1 << 20
# Texts read ahead from a stream.
MAX_CHUNK_SIZE = 1 << 20
# max_chars and max_length (a token holds at least one character): 100x the default of 100,000 characters, so one
# text costs at most ~1 GB of tokenizing memory for prose (README, Input rules).
MAX_TEXT_CHARS = 10_000_000


def check_range(name: str, value: Any, low: int, high: int, optional: bool = False) -> None:
    """Require an int option in ``low..high`` (or ``None`` when ``optional``).

    Args:
        name: The option, as its user spells it (``threads``, ``max_chars``).
        value: Its value.
        low: Smallest allowed.
        high: Largest allowed.
        optional: ``None`` is allowed (the option's default applies).

    Raises:
        ConfigError: ``value`` is not an int (bools excluded) in ``low..high``; names the option and its range.
    """
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        or_none = " or None" if optional else ""
        raise ConfigError(f"{name} must be an int in {low}..{high:,}{or_none}, got {value!r:.40}.")
