"""The HTTP contract of `serve` without Ray: request parsing, per-text failures, status codes and records."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from lstm_onnx.runtime.errors import InputError
from lstm_onnx.runtime.records import prediction_record
from lstm_onnx.runtime.serve_api import (
    RequestError,
    ServeSettings,
    answer_predict,
    classify_batch,
    encode_answer,
    parse_predict_body,
)

SETTINGS = ServeSettings(bundle="unused", max_texts=3, max_body_bytes=200, max_request_chars=60)


@pytest.mark.parametrize(
    ("body", "texts"),
    [(b'{"texts": ["a", "b"]}', ["a", "b"]), (b'{"text": "one"}', ["one"]), ('{"text": "é 😀"}'.encode(), ["é 😀"])],
)
def test_parse_predict_body_accepts_text_and_texts(body: bytes, texts: list[str]) -> None:
    assert parse_predict_body(body, SETTINGS) == texts


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        (b"{not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        (b'["a"]', 400, "got list"),
        (b'{"texts": ["a"], "text": "b"}', 400, "got ['text', 'texts']"),
        (b'{"prompt": "a"}', 400, "got ['prompt']"),
        (b'{"texts": []}', 400, "non-empty list"),
        (b'{"texts": "abc"}', 400, "non-empty list"),
        (b'{"texts": ["a", 3]}', 400, "position 1 is int"),
        (b'{"text": null}', 400, "position 0 is NoneType"),
        (b'{"texts": ["a", "b", "c", "d"]}', 413, "limit is 3"),
        (json.dumps({"text": "x" * 300}).encode(), 413, "over 200 bytes"),
        (json.dumps({"texts": ["x" * 40, "y" * 21]}).encode(), 413, "61 characters in one request; the limit is 60"),
    ],
)
def test_parse_predict_body_refuses_bad_requests(body: bytes, status: int, phrase: str) -> None:
    with pytest.raises(RequestError, match=re.escape(phrase)) as info:
        parse_predict_body(body, SETTINGS)
    assert info.value.status == status


@pytest.mark.parametrize(
    "body",
    [b"[" * 50_000, b'{"text": ' + b"1" * 5000 + b"}"],
    ids=["nesting past the parser's recursion limit", "a number over int's digit limit"],
)
def test_parse_predict_body_refuses_json_python_cannot_hold(body: bytes) -> None:
    with pytest.raises(RequestError, match="not JSON") as info:
        parse_predict_body(body, ServeSettings(bundle="unused"))
    assert info.value.status == 400


def test_classify_batch_isolates_a_bad_text(tiny_model) -> None:  # type: ignore[no-untyped-def]
    outcomes = classify_batch(tiny_model, ["great film", "<br />", "awful film"])
    assert isinstance(outcomes[1], InputError)
    assert [o.label for o in (outcomes[0], outcomes[2])] == [
        p.label for p in tiny_model.predict(["great film", "awful film"])
    ]  # type: ignore[union-attr]


def _answer(tiny_model, body: bytes) -> tuple[int, dict[str, object]]:  # type: ignore[no-untyped-def]
    async def classify(texts: list[str]):  # type: ignore[no-untyped-def]
        return classify_batch(tiny_model, texts)

    return asyncio.run(answer_predict(body, classify, SETTINGS))


def test_answer_predict_returns_the_predict_records(tiny_model) -> None:  # type: ignore[no-untyped-def]
    texts = ["great film", "awful film"]
    status, answer = _answer(tiny_model, json.dumps({"texts": texts}).encode())
    expected = [prediction_record(t, p) for t, p in zip(texts, tiny_model.predict(texts), strict=True)]
    assert status == 200 and answer == {"predictions": expected}


@pytest.mark.parametrize(("body", "status"), [(b'{"texts": ["fine", "   "]}', 422), (b"[]", 400)])
def test_answer_predict_maps_errors_to_4xx_json(tiny_model, body: bytes, status: int) -> None:  # type: ignore[no-untyped-def]
    got, answer = _answer(tiny_model, body)
    assert got == status and isinstance(answer["error"], str)
    if status == 422:
        assert "position 1" in str(answer["error"])


def test_encode_answer_round_trips_a_lone_surrogate(tiny_model) -> None:  # type: ignore[no-untyped-def]
    status, answer = _answer(tiny_model, b'{"text": "great \\ud800 film"}')
    assert status == 200
    assert json.loads(encode_answer(answer)) == answer  # a UTF-8 JSON encoder raises here: the server's 500
    assert json.loads(encode_answer(answer))["predictions"][0]["text"] == "great \ud800 film"


def test_answer_predict_answers_what_classify_refuses() -> None:
    """The front's own refusals (busy, timed out) travel as RequestError out of classify."""

    async def busy(texts: list[str]) -> list[object]:
        raise RequestError(503, "Busy: 64 requests are waiting for the model (the limit); retry shortly.")

    status, answer = asyncio.run(answer_predict(b'{"text": "fine"}', busy, SETTINGS))
    assert status == 503 and str(answer["error"]).startswith("Busy")
