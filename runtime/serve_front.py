"""The HTTP front of ``lstm-onnx serve``: Uvicorn in the serving process, in front of the Ray Serve replica.

Ray Serve's own HTTP proxy is not used (measured, README "Serve"): it hands the request to the replica before the
body has arrived, so a client that stalls its body holds one of the replica's ``max_ongoing_requests`` slots; its
``request_timeout_s`` frees them, but any client switches that off with an ``x-request-timeout-seconds: 0`` header,
and ``/health`` waits in the same queue as ``/predict``. Here every bound on what a client can hold is the front's:

- the request head, and then the body, must arrive within ``client_timeout_s`` (else the connection is closed, or
  the request gets 408); an idle keep-alive connection closes after ``KEEP_ALIVE_S`` (Uvicorn's
  ``timeout_keep_alive``); a response the client does not read is dropped once the request has had all its time;
- at most ``max_connections`` connections and requests being answered (Uvicorn's ``limit_concurrency``: 503 beyond);
- request heads up to 16 KiB (h11's limit, Uvicorn's default), bodies up to ``max_body_bytes`` (413);
- at most ``max_in_flight`` ``/predict`` requests wait for the model; one more gets 503 at once, never a queue; a
  body is read before the request takes its place, so stalled bodies never hold the model's places;
- the model answers within ``request_timeout_s`` (else 504);
- ``GET /health`` is answered here, from counters, and never waits for the model;
- ``Front.stop`` (SIGTERM): stop accepting, answer what was received (at most ``grace_s``), then ``serve`` returns.

FastAPI and Uvicorn are imported only when a front is built (they come with ``pip install 'lstm-onnx[ray]'``).
"""

# No `from __future__ import annotations` here: FastAPI reads route signatures at runtime.

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lstm_onnx.runtime.errors import InputError
from lstm_onnx.runtime.serve_api import RequestError, ServeSettings, answer_predict, encode_answer

if TYPE_CHECKING:
    from lstm_onnx.runtime.predictor import Prediction

__all__ = ["KEEP_ALIVE_S", "Backend", "Front"]

KEEP_ALIVE_S = 5  # Uvicorn's default timeout_keep_alive
STATS_EVERY_S = 0.5  # how often the front asks the model for its batch counters
# /health says the model is unreachable when it has not answered a stats call for this long (it answers from its
# event loop, never behind a batch: the model runs on a thread of its own).
MODEL_SILENT_S = 10.0
SWEEP_EVERY_S = 0.25
_PREDICT_SCHEMA = {
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["texts"],
                        "properties": {"texts": {"type": "array", "items": {"type": "string"}}},
                    },
                    {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
                ]
            }
        }
    },
    "required": True,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": why + ': {"error": message}'}
    for code, why in (
        (400, "not JSON, wrong shape or types"),
        (408, "the body did not arrive within the client timeout"),
        (413, "body, text count or total characters over the limit"),
        (422, "a text breaks the input rules (no tokens, too long)"),
        (503, "busy: max_in_flight requests wait for the model (retry after Retry-After), or the model is unreachable"),
        (504, "the model did not answer within the request timeout"),
    )
}


class Backend(Protocol):
    """What the front needs of the model (the Ray Serve replica, through its handle)."""

    async def classify(self, texts: list[str]) -> "Sequence[Prediction | InputError]":
        """Per text, its ``Prediction`` or the ``InputError`` it raised (position 0: the text alone)."""
        ...

    async def stats(self) -> dict[str, int]:
        """``{"batches": ..., "texts": ...}`` the model formed since it started."""
        ...


class Front:
    """The HTTP server of ``lstm-onnx serve`` for one model backend.

    Args:
        settings: Limits and timeouts.
        backend: The model.
        labels: The model's labels (for ``/health``).
    """

    def __init__(self, settings: ServeSettings, backend: Backend, labels: list[str]) -> None:
        self.settings = settings
        self.backend = backend
        self.labels = labels
        self.in_flight = 0
        self.draining = False
        self.model_stats: dict[str, int] = {"batches": 0, "texts": 0}
        self.model_seen = time.monotonic()
        self._server: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def serve(self, sock: socket.socket) -> None:
        """Serve on the bound, listening ``sock`` until ``stop``; returns once drained (at most ``grace_s``)."""
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the serving process owns SIGTERM/SIGINT (serve.serve_forever) and calls Front.stop

        config = uvicorn.Config(
            self.app(),
            http="h11",
            lifespan="off",
            limit_concurrency=self.settings.max_connections,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=max(1, round(self.settings.grace_s)),
            access_log=False,
            log_config=None,
            log_level="warning",
        )
        self._server = Server(config)
        if self.draining:  # stopped before it started
            self._server.should_exit = True
        helpers = [asyncio.ensure_future(self._watch_model()), asyncio.ensure_future(self._close_stalled())]
        try:
            await self._server.serve(sockets=[sock])
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def stop(self, force: bool = False) -> None:
        """Stop accepting and drain (callable from a signal handler); ``force``: also stop waiting for requests."""
        self.draining = True
        if self._server is not None:
            self._server.should_exit = True
            if force:
                self._server.force_exit = True

    @property
    def connections(self) -> int:
        """Open connections."""
        return len(self._server.server_state.connections) if self._server is not None else 0

    # -- the application -------------------------------------------------------------------------------------

    def app(self) -> Any:
        """The FastAPI application (``/predict``, ``/health``, ``/docs``, ``/openapi.json``)."""
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response

        settings = self.settings
        api = FastAPI(
            title="lstm-onnx", description="Text classification with an lstm-onnx bundle, batched across requests."
        )

        @api.post(  # type: ignore[untyped-decorator, unused-ignore]  # FastAPI is typed only where installed
            "/predict",
            summary="Classify texts",
            description='Body `{"texts": [...]}` or `{"text": "..."}`; answer `{"predictions": [record, ...]}`, the '
            "records `lstm-onnx predict --format jsonl` prints, in order.",
            openapi_extra={"requestBody": _PREDICT_SCHEMA},
            responses=_ERRORS,
        )
        async def predict(request: Request) -> Response:
            try:
                body = await _read_body(request, settings.max_body_bytes, settings.client_timeout_s)
            except RequestError as err:
                status, answer = err.status, {"error": str(err)}
            else:
                status, answer = await answer_predict(body, self._classify, settings)
            headers: dict[str, str] = {}
            if status in (408, 413):  # the rest of the body may still come: never read it, close the connection
                headers["connection"] = "close"
            elif status == 503:
                headers["retry-after"] = "1"
            return Response(encode_answer(answer), status_code=status, media_type="application/json", headers=headers)

        @api.get("/health", summary="Liveness, model, limits and batching statistics")  # type: ignore[untyped-decorator, unused-ignore]  # FastAPI is typed only where installed
        async def health() -> Response:
            silent = time.monotonic() - self.model_seen
            status = "draining" if self.draining else "model unreachable" if silent > MODEL_SILENT_S else "ok"
            batches, texts = self.model_stats["batches"], self.model_stats["texts"]
            answer = {
                "status": status,
                "bundle": settings.bundle.replace("\\", "/").rsplit("/", 1)[-1],
                "labels": self.labels,
                "max_batch_size": settings.max_batch_size,
                "batch_wait_ms": settings.batch_wait_s * 1000,
                "batches": batches,
                "texts": texts,
                "mean_batch_size": texts / batches if batches else 0.0,
                "in_flight": self.in_flight,
                "max_in_flight": settings.max_in_flight,
                "connections": self.connections,
                "max_connections": settings.max_connections,
                "model_answered_s_ago": round(silent, 3),
            }
            return JSONResponse(answer, status_code=200 if status == "ok" else 503)

        return api

    async def _classify(self, texts: list[str]) -> "Sequence[Prediction | InputError]":
        if self.in_flight >= self.settings.max_in_flight:
            raise RequestError(
                503, f"Busy: {self.in_flight} requests are waiting for the model (the limit); retry shortly."
            )
        self.in_flight += 1
        try:
            return await asyncio.wait_for(self.backend.classify(texts), self.settings.request_timeout_s)
        except asyncio.TimeoutError as err:
            raise RequestError(
                504, f"The model did not answer within {self.settings.request_timeout_s:g} s; retry later."
            ) from err
        finally:
            self.in_flight -= 1

    # -- background tasks ------------------------------------------------------------------------------------

    async def _watch_model(self) -> None:
        """Keep the model's batch counters fresh for /health, which then never waits for the model."""
        while True:
            with contextlib.suppress(Exception):  # a model that does not answer shows as model_answered_s_ago
                stats = await asyncio.wait_for(self.backend.stats(), MODEL_SILENT_S)
                self.model_stats = {"batches": int(stats["batches"]), "texts": int(stats["texts"])}
                self.model_seen = time.monotonic()
            await asyncio.sleep(STATS_EVERY_S)

    async def _close_stalled(self) -> None:
        """Close connections whose client keeps them in one state too long: a request head that does not arrive
        within ``client_timeout_s`` (Uvicorn has no such limit), or a request (body, model, response) that has
        outlived every limit it runs under, e.g. a response the client never reads."""
        client, model = self.settings.client_timeout_s, self.settings.request_timeout_s
        busy_limit = 2 * client + model + 1.0
        seen: dict[Any, tuple[Any, bool, float]] = {}  # connection -> (cycle, waiting for a head, since)
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            if self._server is None:
                continue
            now = time.monotonic()
            live = self._server.server_state.connections
            for conn in list(live):
                cycle = getattr(conn, "cycle", None)
                waiting = cycle is None or bool(getattr(cycle, "response_complete", False))
                state = seen.get(conn)
                if state is None or state[0] is not cycle or state[1] != waiting:
                    seen[conn] = (cycle, waiting, now)
                elif now - state[2] > (client if waiting else busy_limit):
                    transport = getattr(conn, "transport", None)
                    if transport is not None:
                        transport.close()
            for conn in [c for c in seen if c not in live]:
                del seen[conn]


async def _read_body(request: Any, limit: int, timeout_s: float) -> bytes:
    """The body, reading at most ``limit + 1`` bytes, all of it within ``timeout_s``.

    Raises:
        RequestError: 408 when the body does not arrive in time.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b" " * (limit + 1)  # parse_predict_body answers 413 for anything over the limit

    async def read() -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError as err:
        raise RequestError(408, f"The request body did not arrive within {timeout_s:g} s.") from err
