"""``lstm-onnx serve``: a bundle behind HTTP, the model in a Ray Serve replica batching requests from many clients.

The serving process holds the HTTP front (``runtime.serve_front``: Uvicorn with every limit a client can push on, and
``GET /health``) and starts a local Ray cluster whose one Ray Serve replica runs the model, off its event loop, in
``@serve.batch`` batches gathered across requests. ``serve_forever`` runs, in this order:

1. SIGTERM and SIGINT handlers that only record the request: a signal never ends start-up halfway.
2. Checks that start nothing (``preflight``): Ray Serve, FastAPI and Uvicorn installed, the bundle a classifier
   that loads, ``host:port`` bound (and kept for the front). A refusal is one line, within a second or two.
3. Ray, Ray Serve and the replica; a stop requested meanwhile ends start-up after the step under way.
4. The front, until SIGTERM/SIGINT: then it stops accepting, answers the requests already received (at most
   ``grace_s``; a second signal stops waiting) and returns.
5. Ray Serve and Ray shut down, and any process the server started that still runs is killed: nothing outlives it.

Ray, Ray Serve, FastAPI and Uvicorn are imported only here, only when serving: ``pip install 'lstm-onnx[ray]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lstm_onnx.runtime.errors import ConfigError, MissingDependencyError
from lstm_onnx.runtime.serve_api import RequestError, ServeSettings, classify_batch

__all__ = ["SERVE_MISSING", "ServeSettings", "build_application", "preflight", "serve_forever"]

SERVE_MISSING = "`lstm-onnx serve` needs Ray Serve, which is not installed. Install: pip install 'lstm-onnx[ray]'."
APP_NAME = "lstm-onnx"
# Ray's shared-memory object store: requests are small, and the machine may be shared.
RAY_OBJECT_STORE_BYTES = 128 * 1024**2
# Calls the replica takes besides /predict's max_in_flight: the front's stats calls must never wait behind them.
_SPARE_REPLICA_CALLS = 8
# How long Ray's shutdown may take, and how long processes the server started then get to exit before they are killed.
_SHUTDOWN_WAIT_S = 20.0
_LEFTOVER_GRACE_S = 5.0


def build_application(settings: ServeSettings) -> Any:
    """The Ray Serve application: one replica with ``classify(texts)`` and ``stats()``, called through its handle.

    Raises:
        MissingDependencyError: Ray Serve is not installed.
    """
    try:
        from ray import serve
    except ModuleNotFoundError as err:
        raise MissingDependencyError(SERVE_MISSING) from err

    @serve.deployment(
        num_replicas=1,
        max_ongoing_requests=settings.max_in_flight + _SPARE_REPLICA_CALLS,
        graceful_shutdown_timeout_s=settings.grace_s,
        ray_actor_options={"num_cpus": 1},
    )
    class TextClassifierReplica:
        def __init__(self, settings: ServeSettings) -> None:
            from concurrent.futures import ThreadPoolExecutor

            from lstm_onnx.runtime.predictor import TextClassifier

            self.model = TextClassifier.load(settings.bundle, providers="cpu", batch_size=settings.max_batch_size)
            # The model runs here, never on the replica's event loop, which keeps answering (stats, new requests
            # joining the next batch) while a batch is computed. One thread: batches run one at a time.
            self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="lstm-onnx-model")
            self.batches = 0
            self.texts = 0
            batched: Any = self._batched  # serve.batch adds these setters; its type stubs do not say so
            batched.set_max_batch_size(settings.max_batch_size)
            batched.set_batch_wait_timeout_s(settings.batch_wait_s)

        @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.005)  # type: ignore[untyped-decorator, unused-ignore]  # Ray Serve's decorators are typed only with Ray
        async def _batched(self, texts: list[str]) -> list[Any]:
            loop = asyncio.get_running_loop()
            outcomes = await loop.run_in_executor(self.model_thread, classify_batch, self.model, texts)
            self.batches += 1
            self.texts += len(texts)
            return outcomes

        async def classify(self, texts: list[str]) -> list[Any]:
            return list(await asyncio.gather(*(self._batched(text) for text in texts)))

        async def stats(self) -> dict[str, int]:
            return {"batches": self.batches, "texts": self.texts}

    deployment: Any = TextClassifierReplica  # serve.deployment returns a Deployment; its stubs keep the class type
    return deployment.bind(settings)


class _ReplicaBackend:
    """``serve_front.Backend`` over the replica's handle."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def classify(self, texts: list[str]) -> list[Any]:
        from ray.exceptions import RayTaskError

        response = self.handle.classify.remote(texts)
        try:
            outcomes: list[Any] = await response
        except asyncio.CancelledError:  # timed out or drained past the grace period: the replica drops it too
            response.cancel()
            raise
        except RayTaskError as err:  # a bug, not the client's fault
            raise RequestError(500, f"The model failed on this request ({err.cause!r}).") from err
        except Exception as err:  # the replica died or cannot be reached (Ray Serve restarts it), or is overloaded
            raise RequestError(503, f"The model is not reachable ({type(err).__name__}); retry shortly.") from err
        return outcomes

    async def stats(self) -> dict[str, int]:
        stats: dict[str, int] = await self.handle.stats.remote()
        return stats


# --- before anything starts ------------------------------------------------------------------------------


def preflight(settings: ServeSettings, host: str, port: int) -> tuple[socket.socket, list[str]]:
    """Everything that can refuse to serve, checked before any process or thread is started.

    Returns:
        The listening socket on ``host:port`` (the front serves on it, so no one can take the port meanwhile) and
        the model's labels.

    Raises:
        MissingDependencyError: Ray Serve, FastAPI or Uvicorn is not installed.
        BundleError: The bundle cannot be loaded, or is not a classifier (e.g. a tagger).
        ConfigError: ``host:port`` cannot be listened on (in use, not an address of this machine).
    """
    for module in ("ray", "fastapi", "uvicorn", "h11"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(SERVE_MISSING)
    from lstm_onnx.runtime.predictor import TextClassifier

    labels = list(TextClassifier.load(settings.bundle, providers="cpu").labels)
    _raise_open_files_limit(settings.max_connections + 256)
    return _listen(host, port, backlog=min(settings.max_connections, socket.SOMAXCONN)), labels


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError(f"Cannot listen on {host}:{port} ({err}); give --host an address of this machine.") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as err:
        sock.close()
        hint = "pick another --port or stop what uses it" if port else "give another --host"
        raise ConfigError(f"Cannot listen on {host}:{port} ({err.strerror or err}); {hint}.") from err
    return sock


def _raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor: lift the soft limit toward ``wanted`` (never past the hard one)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- start-up, serving, shutdown -------------------------------------------------------------------------


class _Signals:
    """SIGTERM and SIGINT, from the first instruction of ``serve_forever`` to its last: record the request and tell
    the front (once it serves) to drain; a second signal stops waiting for requests."""

    def __init__(self) -> None:
        self.received = 0
        self.front: Any = None

    def __call__(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.front is not None:
            self.front.stop(force=self.received > 1)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def reinstall(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self)


def serve_forever(settings: ServeSettings, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve until SIGTERM (``kill``, ``docker stop``, systemd, Kubernetes) or Ctrl-C, drain, then shut down.

    Raises:
        MissingDependencyError, BundleError, ConfigError: As ``preflight``, before anything starts.
    """
    signals = _Signals()
    with signals.installed():
        sock, labels = preflight(settings, host, port)
        with sock:
            if signals.received:
                return
            cluster = _Cluster()
            try:
                handle = cluster.start(settings, stopping=lambda: signals.received > 0)
                signals.reinstall()  # whatever Ray set up, SIGTERM and SIGINT stay ours
                if handle is None or signals.received:
                    return
                from lstm_onnx.runtime.serve_front import Front

                front = Front(settings, _ReplicaBackend(handle), labels)
                signals.front = front
                if signals.received:
                    return
                announce(
                    f"serving {settings.bundle} on http://{host}:{port} (POST /predict, GET /health, docs at /docs)"
                )
                asyncio.run(front.serve(sock))
            finally:
                cluster.stop()


class _Cluster:
    """The local Ray cluster, Ray Serve (no HTTP proxy) and the replica that ``serve_forever`` starts and stops."""

    def __init__(self) -> None:
        self.ray_started = False
        self.serve_started = False

    def start(self, settings: ServeSettings, stopping: Callable[[], bool]) -> Any:
        """The replica's handle, or ``None`` once ``stopping()`` says so (checked between steps)."""
        # Ray's C++ core installs absl's failure-signal handler, which turns SIGTERM into an abort with a stack dump
        # (exit 134) before any Python cleanup runs. Set before Ray is imported; inherited by the cluster.
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        import ray
        from ray import serve

        if stopping():
            return None
        self.ray_started = True
        with _ray_leaves_sigterm_alone():
            ray.init(
                num_cpus=2,
                object_store_memory=RAY_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        if stopping():
            return None
        self.serve_started = True
        serve.start(proxy_location="Disabled")
        if stopping():
            return None
        return serve.run(build_application(settings), name=APP_NAME, route_prefix=None)

    def stop(self) -> None:
        """Shut Ray Serve and Ray down if they were started, then end whatever they left running.

        Bounded: when the cluster's processes were killed under it (a signal sent to the whole process group, e.g.
        by ``timeout`` or systemd's default ``KillMode``), Ray's shutdown can wait a minute for them; after
        ``_SHUTDOWN_WAIT_S`` the processes are killed and this process exits at once (0), skipping Ray's exit hooks,
        which would wait again.
        """
        if not self.ray_started:
            return
        import ray

        started = _descendants()

        def shutdown() -> None:
            if self.serve_started:
                from ray import serve

                with contextlib.suppress(Exception):  # shutting down regardless: Ray's own errors must not stop it
                    serve.shutdown()  # type: ignore[no-untyped-call, unused-ignore]  # typed only with Ray
            ray.shutdown()

        worker = threading.Thread(target=shutdown, name="lstm-onnx-ray-shutdown", daemon=True)
        worker.start()
        worker.join(_SHUTDOWN_WAIT_S)
        _end_processes(started, 0.0 if worker.is_alive() else _LEFTOVER_GRACE_S)
        if worker.is_alive():
            print("error: Ray did not shut down in time; its processes were killed.", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(0)


@contextlib.contextmanager
def _ray_leaves_sigterm_alone() -> Iterator[None]:
    """``ray.init`` replaces the SIGTERM handler twice (the driver's ``sys.exit(15)``; the head node's, which kills
    the node's processes and exits 1): a SIGTERM then ends start-up in the middle, with a traceback, an exit code that
    is not 0 and, depending on the moment, an abort or Ray processes left running. Keep ours, which only records it."""
    try:
        import ray._private.utils as ray_utils
    except ImportError:  # pragma: no cover - a Ray without it installs nothing to keep off
        yield
        return
    original = getattr(ray_utils, "set_sigterm_handler", None)
    if original is None:  # pragma: no cover
        yield
        return
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = original


def _descendants() -> dict[int, str]:
    """This process's descendants as ``{pid: start time}`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None:
            parents.setdefault(int(stat[1]), []).append(int(entry))
            starts[int(entry)] = stat[19]
    found: dict[int, str] = {}
    todo = [os.getpid()]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found[child] = starts[child]
                todo.append(child)
    return found


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ..., starttime at index 19]."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _end_processes(processes: dict[int, str], grace_s: float) -> None:
    """Wait up to ``grace_s`` for ``processes`` to exit, then kill the ones still running (same pid, same start)."""

    def running() -> list[int]:
        alive = []
        for pid, start in processes.items():
            stat = _stat(pid)
            if stat is not None and stat[19] == start and stat[0] != "Z":
                alive.append(pid)
        return alive

    deadline = time.monotonic() + grace_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in running():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in processes:  # collect this process's own children (others are their parents' or init's to collect)
        with contextlib.suppress(OSError):
            os.waitpid(pid, os.WNOHANG)
