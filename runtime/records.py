"""The one prediction record: what `lstm-onnx predict --format jsonl` prints, scoring writes and serving returns.

A record is ``{"text", "label", "score", "probabilities"}`` plus ``"truncated": true`` when the text was cut, and
``"id"`` first when the caller carries one through. A tagger's record is ``{"id"?, "tokens", "tags", "scores"}``.
A text that could not be scored (``predict --on-error null``) gets the same keys as nulls plus ``"error"``. Every
path builds them here, so the formats cannot drift apart.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module; onnxruntime loads only when a model does
    from lstm_onnx.runtime.predictor import Prediction
    from lstm_onnx.runtime.tagger import TaggedSentence

__all__ = ["PREDICTION_KEYS", "TAG_KEYS", "failure_record", "json_line", "prediction_record", "tag_record"]

# The keys of a record after its optional "id", in order.
PREDICTION_KEYS = ("text", "label", "score", "probabilities")
TAG_KEYS = ("tokens", "tags", "scores")


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


def tag_record(sentence: TaggedSentence, id: Any = None) -> dict[str, Any]:  # noqa: A002
    """The JSON-able record of one tagged sentence: ``{"id"?, "tokens", "tags", "scores"}``.

    Args:
        sentence: The tagged sentence.
        id: An identifier carried through from the input (``None``: no ``id`` key).
    """
    row: dict[str, Any] = {} if id is None else {"id": id}
    row.update(sentence.to_dict())
    return row


def failure_record(keys: tuple[str, ...], error: str, id: Any = None, **given: Any) -> dict[str, Any]:  # noqa: A002
    """The record of an input that has no result: a result record's ``keys`` as nulls (but those ``given``), plus
    ``error``.

    Args:
        keys: ``PREDICTION_KEYS`` or ``TAG_KEYS``.
        error: Why there is no result.
        id: An identifier carried through from the input (``None``: no ``id`` key).
        given: Values known without a result, e.g. ``text``.
    """
    row: dict[str, Any] = {} if id is None else {"id": id}
    row.update({key: given.get(key) for key in keys}, error=error)
    return row


def json_line(obj: dict[str, Any]) -> str:
    """One JSON line (no newline), UTF-8 as is; a text with lone surrogates falls back to JSON's ``\\u`` escapes."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the escapes keep the exact text
        line = json.dumps(obj)
    return line
