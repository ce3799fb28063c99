"""``lstm-onnx serve``: a bundle behind HTTP on Ray Serve, with requests from many clients batched together.

Routes (FastAPI, so ``/docs`` and ``/openapi.json`` describe them): ``POST /predict`` (contract in
``runtime.serve_api``), ``GET /health`` (model, settings, and the batches the server formed: ``mean_batch_size``).
Ray, Ray Serve and FastAPI are imported only here, only when serving: ``pip install 'lstm-onnx[ray]'``.
"""

# No `from __future__ import annotations` here: FastAPI reads route signatures at runtime, and `Request` is imported
# inside build_application (FastAPI is optional), where only eager annotations can see it.

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.errors import MissingDependencyError
from lstm_onnx.runtime.serve_api import ServeSettings, answer_predict, classify_batch, encode_answer

__all__ = ["SERVE_MISSING", "ServeSettings", "build_application", "serve_forever", "start_server", "stop_server"]

SERVE_MISSING = "`lstm-onnx serve` needs Ray Serve, which is not installed. Install: pip install 'lstm-onnx[ray]'."
APP_NAME = "lstm-onnx"
# Ray's shared-memory object store: requests are small, and the machine may be shared.
RAY_OBJECT_STORE_BYTES = 128 * 1024**2
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
        (413, "body or text count over the limit"),
        (422, "a text breaks the input rules (no tokens, too long)"),
    )
}


def build_application(settings: ServeSettings) -> Any:
    """The Ray Serve application (one replica) for ``settings``; run it with ``serve.run``.

    Raises:
        MissingDependencyError: Ray Serve or FastAPI is not installed.
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import Response
        from ray import serve
    except ModuleNotFoundError as err:
        raise MissingDependencyError(SERVE_MISSING) from err

    api = FastAPI(
        title="lstm-onnx", description="Text classification with an lstm-onnx bundle, batched across requests."
    )

    @serve.deployment(num_replicas=1, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 1})
    @serve.ingress(api)
    class TextClassifierServer:
        def __init__(self, settings: ServeSettings) -> None:
            from lstm_onnx.runtime.predictor import TextClassifier

            self.settings = settings
            self.model = TextClassifier.load(settings.bundle, providers="cpu", batch_size=settings.max_batch_size)
            self.batches = 0
            self.texts = 0
            batched: Any = self._batched  # serve.batch adds these setters; its type stubs do not say so
            batched.set_max_batch_size(settings.max_batch_size)
            batched.set_batch_wait_timeout_s(settings.batch_wait_s)

        @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005)  # type: ignore[untyped-decorator, unused-ignore]  # Ray Serve's decorators are typed only with Ray
        async def _batched(self, texts: list[str]) -> list[Any]:
            self.batches += 1
            self.texts += len(texts)
            return classify_batch(self.model, texts)

        @api.post(  # type: ignore[untyped-decorator, unused-ignore]  # Ray Serve's decorators are typed only with Ray
            "/predict",
            summary="Classify texts",
            description='Body `{"texts": [...]}` or `{"text": "..."}`; answer `{"predictions": [record, ...]}`, the '
            "records `lstm-onnx predict --format jsonl` prints, in order.",
            openapi_extra={"requestBody": _PREDICT_SCHEMA},
            responses=_ERRORS,
        )
        async def predict(self, request: Request) -> Response:
            body = await _read_capped(request, self.settings.max_body_bytes)
            status, answer = await answer_predict(body, self._batched, self.settings)
            return Response(encode_answer(answer), status_code=status, media_type="application/json")

        @api.get("/health", summary="Liveness, model and batching statistics")  # type: ignore[untyped-decorator, unused-ignore]  # Ray Serve's decorators are typed only with Ray
        async def health(self) -> dict[str, Any]:
            return {
                "status": "ok",
                "bundle": Path(self.settings.bundle).name,
                "labels": self.model.labels,
                "max_batch_size": self.settings.max_batch_size,
                "batch_wait_ms": self.settings.batch_wait_s * 1000,
                "batches": self.batches,
                "texts": self.texts,
                "mean_batch_size": self.texts / self.batches if self.batches else 0.0,
            }

    deployment: Any = TextClassifierServer  # serve.deployment returns a Deployment; its stubs keep the class type
    return deployment.bind(settings)


async def _read_capped(request: Any, limit: int) -> bytes:
    """The body, reading at most ``limit + 1`` bytes: an oversized body is refused without being held whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b" " * (limit + 1)  # parse_predict_body answers 413 for anything over the limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def start_server(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Start a local Ray cluster (if none runs) and serve ``settings`` on ``host:port``; returns when ready.

    Raises:
        MissingDependencyError: Ray Serve is not installed.
        BundleError: The bundle cannot be loaded, or is not a classifier.
    """
    try:
        import ray
        from ray import serve
    except ModuleNotFoundError as err:
        raise MissingDependencyError(SERVE_MISSING) from err
    from lstm_onnx.runtime.predictor import TextClassifier

    # Load once here: a bundle the replica could not load (changed, incomplete, a tagger) fails in one line before a
    # cluster starts, not as a replica crash deep inside Ray Serve.
    TextClassifier.load(settings.bundle, providers="cpu")
    # Ray's C++ core installs absl's failure-signal handler for SIGTERM, which aborts the process (exit 134) before
    # any Python cleanup runs; serve_forever handles SIGTERM itself. Set before the cluster starts; inherited by it.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            object_store_memory=RAY_OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_application(settings), name=APP_NAME, route_prefix="/")


def stop_server() -> None:
    """Stop Ray Serve and the Ray cluster this process started."""
    import ray
    from ray import serve

    serve.shutdown()  # type: ignore[no-untyped-call, unused-ignore]  # typed only with Ray
    ray.shutdown()


def serve_forever(settings: ServeSettings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM as sent by `kill`, `docker stop` or systemd), then shut Ray down."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        start_server(settings, host, port)
        # Ray's handler (installed by ray.init) exits without a word; stop the server the way Ctrl-C does instead.
        # Set after ray.init; "serving ..." is announced only once it is in place.
        signal.signal(signal.SIGTERM, _interrupt)
        announce(f"serving {settings.bundle} on http://{host}:{port} (POST /predict, GET /health, docs at /docs)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_server()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
