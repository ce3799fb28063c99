"""The HTTP contract of `serve` without Ray: request parsing, per-text failures, status codes and records."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

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

SETTINGS = ServeSettings(bundle="unused", max_texts=3, max_body_bytes=200)


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
    async def one(text: str):  # type: ignore[no-untyped-def]
        return classify_batch(tiny_model, [text])[0]

    return asyncio.run(answer_predict(body, one, SETTINGS))


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


def test_serve_end_to_end_on_local_ray(tiny_bundle_dir: Path) -> None:
    pytest.importorskip("ray.serve")
    import urllib.error
    import urllib.request

    from lstm_onnx.runtime.serve import start_server, stop_server

    port = 18431
    start_server(ServeSettings(bundle=str(tiny_bundle_dir)), port=port)
    try:
        url = f"http://127.0.0.1:{port}"

        def post(body: bytes) -> tuple[int, dict[str, object]]:
            request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        status, answer = post(b'{"texts": ["great film", "awful film"]}')
        assert status == 200, answer
        assert [p["label"] for p in answer["predictions"]] == ["pos", "neg"]  # type: ignore[index]
        assert post(b"{oops")[0] == 400 and post(b'{"text": ""}')[0] == 422
        assert post(b'{"text": "great \\ud800 film"}')[0] == 200
        with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
            assert json.loads(response.read())["texts"] == 4
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as response:
            assert "/predict" in json.loads(response.read())["paths"]
    finally:
        stop_server()


def test_serve_command_stops_cleanly_on_sigterm(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """`kill`/`docker stop` send SIGTERM: the server must shut Ray down, not die and orphan the local cluster."""
    pytest.importorskip("ray.serve")
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from lstm_onnx.cli import app\n"
        f"app(['serve', {str(tiny_bundle_dir)!r}, '--port', '{port}'], prog_name='lstm-onnx')\n"
    )
    server = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        # "serving ..." is printed once the server answers and its SIGTERM handler is in place.
        assert server.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            if line.startswith("serving ") or not line:
                break
        assert line.startswith("serving "), "the server did not start within 120 s"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert json.loads(answer.read())["status"] == "ok"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
