"""The HTTP contract of ``lstm-onnx serve``, free of any web framework or Ray so it is tested on its own.

``POST /predict`` takes ``{"texts": [str, ...]}`` or ``{"text": str}`` and answers ``{"predictions": [record, ...]}``
with one ``prediction_record`` per text, in order. Every bad request gets a 4xx and ``{"error": message}``:

- 400: the body is not JSON, not an object, has neither or both of ``text``/``texts``, other keys, or a text
  that is not a string; ``texts`` is empty.
- 413: the body is over ``max_body_bytes``, or ``texts`` holds more than ``max_texts`` items.
- 422: a text breaks the model's input rules (no tokens, over ``max_length``); the message names its position.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lstm_onnx.runtime.errors import InputError
from lstm_onnx.runtime.json_text import parse_json
from lstm_onnx.runtime.records import json_line, prediction_record

if TYPE_CHECKING:
    from lstm_onnx.runtime.predictor import Prediction, TextClassifier

__all__ = ["RequestError", "ServeSettings", "answer_predict", "classify_batch", "encode_answer", "parse_predict_body"]


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and what it accepts.

    Attributes:
        bundle: Bundle directory (absolute: replicas may start elsewhere).
        max_batch_size: Most texts in one model call, gathered across requests.
        batch_wait_s: How long a batch waits to fill up.
        max_texts: Most texts in one request.
        max_body_bytes: Largest request body.
    """

    bundle: str
    max_batch_size: int = 64
    batch_wait_s: float = 0.005
    max_texts: int = 256
    max_body_bytes: int = 1_048_576


class RequestError(Exception):
    """A request the server refuses; ``status`` is the 4xx code to answer with.

    Args:
        status: HTTP status code (400, 413 or 422).
        message: What is wrong and how to fix it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_predict_body(body: bytes, settings: ServeSettings) -> list[str]:
    """The texts of a ``POST /predict`` body.

    Args:
        body: The raw request body.
        settings: Limits.

    Returns:
        The texts, in order (one for ``{"text": ...}``).

    Raises:
        RequestError: 400 or 413 as the module docstring lists.
    """
    if len(body) > settings.max_body_bytes:
        raise RequestError(413, f"Body is over {settings.max_body_bytes} bytes; send fewer or shorter texts.")
    try:
        payload = parse_json(body)
    except ValueError as err:
        raise RequestError(400, f'Body is not JSON ({err}); send {{"texts": ["..."]}}.') from err
    if not isinstance(payload, dict) or len(payload) != 1 or not {"text", "texts"} >= payload.keys():
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise RequestError(400, f'Body must be {{"texts": [...]}} or {{"text": "..."}}, got {got}.')
    if "text" in payload:
        texts: Any = [payload["text"]]
    else:
        texts = payload["texts"]
        if not isinstance(texts, list) or not texts:
            raise RequestError(400, f"'texts' must be a non-empty list of strings, got {_show(texts)}.")
        if len(texts) > settings.max_texts:
            raise RequestError(413, f"{len(texts)} texts in one request; the limit is {settings.max_texts}.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(400, f"Text at position {i} is {type(text).__name__}, not a string.")
    return list(texts)


def classify_batch(model: TextClassifier, texts: Sequence[str]) -> list[Prediction | InputError]:
    """Classify a server batch; a text breaking the input rules fails alone, never its batch-mates.

    Args:
        model: The classifier.
        texts: Texts gathered from one or many requests.

    Returns:
        Per text, its ``Prediction`` or the ``InputError`` it raised (position 0: the text alone).
    """
    try:
        return list(model.predict(texts))
    except InputError:
        outcomes: list[Prediction | InputError] = []
        for text in texts:
            try:
                outcomes.append(model.predict([text])[0])
            except InputError as err:
                outcomes.append(err)
        return outcomes


async def answer_predict(
    body: bytes, classify_one: Callable[[str], Awaitable[Prediction | InputError]], settings: ServeSettings
) -> tuple[int, dict[str, Any]]:
    """Status and JSON answer of ``POST /predict``.

    Args:
        body: The raw request body.
        classify_one: Classifies one text (the server batches these calls across requests).
        settings: Limits.

    Returns:
        ``(200, {"predictions": [...]})`` or ``(4xx, {"error": message})``.
    """
    import asyncio

    try:
        texts = parse_predict_body(body, settings)
    except RequestError as err:
        return err.status, {"error": str(err)}
    outcomes = await asyncio.gather(*(classify_one(text) for text in texts))
    records = []
    for i, (text, outcome) in enumerate(zip(texts, outcomes, strict=True)):
        if isinstance(outcome, InputError):
            return 422, {"error": str(outcome).replace("position 0", f"position {i}", 1)}
        records.append(prediction_record(text, outcome))
    return 200, {"predictions": records}


def encode_answer(answer: dict[str, Any]) -> bytes:
    """The response body: UTF-8 JSON. A text sent with a lone surrogate (``"\\ud800"``, valid JSON) is echoed back
    as a ``\\u`` escape; a plain UTF-8 encoder would fail on it and turn the answer into a 500."""
    return json_line(answer).encode("utf-8")


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
