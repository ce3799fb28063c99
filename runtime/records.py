"""The one prediction record: what `lstm-onnx predict --format jsonl` prints, scoring writes and serving returns.

A record is ``{"text", "label", "score", "probabilities"}`` plus ``"truncated": true`` when the text was cut, and
``"id"`` first when the caller carries one through. Every path builds it here, so the formats cannot drift apart.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module; onnxruntime loads only when a model does
    from lstm_onnx.runtime.predictor import Prediction

__all__ = ["json_line", "prediction_record"]


def prediction_record(text: str, prediction: Prediction, id: Any = None) -> dict[str, Any]:  # noqa: A002
    """The JSON-able record of one prediction.

    Args:
        text: The text as given.
        prediction: Its prediction.
        id: An identifier carried through from the input (``None``: no ``id`` key).

    Returns:
        ``{"id"?, "text", "label", "score", "probabilities", "truncated"?}``.
    """
    row: dict[str, Any] = {} if id is None else {"id": id}
    row.update(text=text, label=prediction.label, score=prediction.score, probabilities=prediction.probabilities)
    if prediction.truncated:
        row["truncated"] = True
    return row


def json_line(obj: dict[str, Any]) -> str:
    """One JSON line (no newline), UTF-8 as is; a text with lone surrogates falls back to JSON's ``\\u`` escapes."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the escapes keep the exact text
        line = json.dumps(obj)
    return line
