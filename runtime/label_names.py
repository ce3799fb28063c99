"""The one rule for label names, wherever they come from: training data, a run's or a bundle's config.json, relabel.

A label is printed in one-line places (tables, CSV headers, a wheel's METADATA) and compared by eye, so it must be
visible text on one line: no control characters or line separators (a newline starts a new header or row), no
invisible format characters (``neg=pos\\u200b`` made two classes that both printed ``pos``), no lone surrogates. And
no two labels of one model may print alike: equal once compatibility-normalized (NFKC: fullwidth ``ｐｏｓ`` is ``pos``)
with their whitespace collapsed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["label_problem"]

# Unicode categories a label may not hold, and what they are called in messages.
_LINE_BREAKING = {"Cc": "a control character", "Zl": "a line separator", "Zp": "a paragraph separator"}
_INVISIBLE = {"Cf": "an invisible format character", "Cs": "a lone surrogate"}


def _seen_as(name: str) -> str:
    """How a name reads on screen: format characters dropped, NFKC-normalized, whitespace collapsed."""
    visible = "".join(ch for ch in name if unicodedata.category(ch) not in _INVISIBLE)
    return " ".join(unicodedata.normalize("NFKC", visible).split())


def _codepoint(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()


def label_problem(names: Sequence[str]) -> str | None:
    """What is wrong with a model's label names, or ``None`` when nothing is.

    Args:
        names: The labels in class-id order (strings).

    Returns:
        One sentence (no final period) naming the offending label(s) and why, for the caller's error.
    """
    for name in names:
        for ch in name:
            category = unicodedata.category(ch)
            if category in _LINE_BREAKING:
                return (
                    f"Label names must be one line without control characters, got {name!r} "
                    f"({_codepoint(ch)} is {_LINE_BREAKING[category]})"
                )
            if category in _INVISIBLE:
                return (
                    f"Label names must be visible text, got {name!r}: {_codepoint(ch)} is {_INVISIBLE[category]}, "
                    f"so it prints like {_seen_as(name)!r}"
                )
    first: dict[str, str] = {}
    for name in names:
        key = _seen_as(name)
        if key in first:
            other = first[key]
            alike = "the same name" if other == name else f"names that print alike ({key!r})"
            return f"Labels {other!r} and {name!r} would name two classes with {alike}; every label needs its own name"
        first[key] = name
    return None
