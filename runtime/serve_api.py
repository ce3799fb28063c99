"""The HTTP contract of ``lstm-onnx serve``, free of any web framework or Ray so it is tested on its own.

``POST /predict`` takes ``{"texts": [str, ...]}`` or ``{"text": str}`` and answers ``{"predictions": [record, ...]}``
with one ``prediction_record`` per text, in order. Every bad request gets a 4xx and ``{"error": message}``:

- 400: the body is not JSON, not an object, has neither or both of ``text``/``texts``, other keys, or a text
  that is not a string; ``texts`` is empty.
- 413: the body is over ``max_body_bytes``, ``texts`` holds more than ``max_texts`` items, or the texts hold more
  than ``max_request_chars`` characters together (what one request may cost the model is bounded, not only each text).
- 422: a text breaks the model's input rules (no tokens, over ``max_length``); the message names its position.

The HTTP front (``runtime.serve_front``) adds the answers about time and load: 408 (the body did not arrive within
``client_timeout_s``), 503 (``max_in_flight`` requests already wait for the model, or it is unreachable) and 504 (the
model did not answer within ``request_timeout_s``).
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
        max_request_chars: Most characters in all the texts of one request together.
        max_connections: Open connections (and requests being answered) beyond which a request gets 503.
        max_in_flight: ``POST /predict`` requests waiting for the model at once; one more gets 503 at once.
        client_timeout_s: Time a client has to send a request's head, and then its body (else 408).
        request_timeout_s: Time the model has to answer a request once it is received (else 504).
        grace_s: On SIGTERM, how long requests already received may take to be answered before the server exits.
    """

    bundle: str
    max_batch_size: int = 64
    batch_wait_s: float = 0.005
    max_texts: int = 256
    max_body_bytes: int = 1_048_576
    max_request_chars: int = 262_144
    max_connections: int = 2_048
    max_in_flight: int = 64
    client_timeout_s: float = 10.0
    request_timeout_s: float = 30.0
    grace_s: float = 30.0


class RequestError(Exception):
    """A request the server refuses; ``status`` is the 4xx code to answer with.

    Args:
        status: HTTP status code (400, 408, 413, 422, 503 or 504).
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
    chars = sum(map(len, texts))
    if chars > settings.max_request_chars:
        raise RequestError(
            413,
            f"{chars} characters in one request; the limit is {settings.max_request_chars}: "
            "send fewer or shorter texts per request.",
        )
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
    body: bytes,
    classify: Callable[[list[str]], Awaitable[Sequence[Prediction | InputError]]],
    settings: ServeSettings,
) -> tuple[int, dict[str, Any]]:
    """Status and JSON answer of ``POST /predict``.

    Args:
        body: The raw request body.
        classify: Classifies a request's texts (the server batches them across requests); per text its
            ``Prediction`` or ``InputError``. It may raise ``RequestError`` (busy, timed out) to answer with it.
        settings: Limits.

    Returns:
        ``(200, {"predictions": [...]})`` or ``(4xx/5xx, {"error": message})``.
    """
    try:
        texts = parse_predict_body(body, settings)
        outcomes = await classify(texts)
    except RequestError as err:
        return err.status, {"error": str(err)}
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
