"""`lstm-onnx serve` as a process on 127.0.0.1, under hostile load and signals.

One server (the module's fixture) answers the contract, stalled clients, a saturated model, and at the end SIGTERM
under load; SIGTERM during start-up and the refusals checked before anything starts use processes of their own.
Every network wait has a timeout; every process the tests start, and everything it starts, is ended.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.serve")
psutil = pytest.importorskip("psutil")

HOST = "127.0.0.1"
START_TIMEOUT_S = 240  # a cold Ray start on a busy 2-core machine takes 20-40 s
CLIENT_TIMEOUT_S = 2.0
MAX_IN_FLIGHT = 16
MAX_CONNECTIONS = 1100
MAX_REQUEST_CHARS = 1_000_000
_WORDS = "great film awful plot the acting was really quite fun and boring".split()


def _text(chars: int, seed: int = 0) -> str:
    words = [_WORDS[(i * 7 + seed) % len(_WORDS)] for i in range(chars // 4 + 1)]
    return " ".join(words)[:chars]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """``lstm-onnx serve`` in a process of its own; ``mark`` is in the environment of everything it starts."""

    def __init__(self, bundle: Path, folder: Path, *args: str) -> None:
        self.port = _free_port()
        self.mark = uuid.uuid4().hex
        self.log = folder / f"serve-{self.mark}.log"
        code = (
            "import sys\nfrom lstm_onnx.cli import app\n"
            f"app(['serve', {str(bundle)!r}, '--port', '{self.port}', *sys.argv[1:]], prog_name='lstm-onnx')\n"
        )
        with open(self.log, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                cwd=folder,
                env={**os.environ, "LSTM_ONNX_TEST_MARK": self.mark},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if "\nserving " in "\n" + self.output():
                return
            time.sleep(0.2)
        raise AssertionError(f"the server did not start within {timeout_s} s:\n{self.output()[-3000:]}")

    def started(self) -> list[Any]:
        """Processes still running that the server started (or the server itself)."""
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("LSTM_ONNX_TEST_MARK") == self.mark:
                    found.append(proc)
        return found

    def end(self) -> None:
        """SIGTERM, then SIGKILL for anything left: a failing test never leaves a cluster behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        for proc in self.started():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 30
    ) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            response = conn.getresponse()
            raw = response.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = raw.decode("utf-8", "replace")
            return response.status, answer, {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()

    def health(self, timeout: float = 5) -> dict[str, Any]:
        status, answer, _ = self.request("GET", "/health", timeout=timeout)
        assert status == 200, answer
        return dict(answer)

    def predict(self, texts: list[str], timeout: float = 60) -> tuple[int, Any, dict[str, str]]:
        return self.request("POST", "/predict", json.dumps({"texts": texts}).encode(), timeout=timeout)


@pytest.fixture(scope="module")
def server(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module; the last test stops it with SIGTERM."""
    running = Server(
        tiny_bundle_dir,
        tmp_path_factory.mktemp("serve"),
        "--client-timeout-s",
        str(CLIENT_TIMEOUT_S),
        "--max-in-flight",
        str(MAX_IN_FLIGHT),
        "--max-connections",
        str(MAX_CONNECTIONS),
        "--max-request-chars",
        str(MAX_REQUEST_CHARS),
    )
    try:
        running.wait_serving()
        yield running
    finally:
        running.end()


def _open_files(wanted: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _status_line(sock: socket.socket) -> str:
    """The status line the server sent on ``sock`` ("" if it closed without one); waits at most 1 s."""
    sock.settimeout(1.0)
    try:
        data = sock.recv(64)
    except TimeoutError:
        return "(nothing)"
    except OSError:
        return ""
    return data.split(b"\r\n", 1)[0].decode("latin-1")


# ------------------------------------------------------------------ the contract


def test_predict_health_and_openapi(server: Server) -> None:
    status, answer, _ = server.predict(["great film", "awful film"])
    assert status == 200, answer
    assert [p["label"] for p in answer["predictions"]] == ["pos", "neg"]
    assert server.request("POST", "/predict", b"{oops")[0] == 400
    assert server.request("POST", "/predict", b'{"text": ""}')[0] == 422
    assert server.request("POST", "/predict", b'{"text": "great \\ud800 film"}')[0] == 200
    deadline = time.monotonic() + 10
    while server.health()["texts"] < 4 and time.monotonic() < deadline:  # the counters arrive within a poll
        time.sleep(0.1)
    health = server.health()
    assert health["status"] == "ok" and health["texts"] == 4 and health["labels"] == ["neg", "pos"]
    assert health["max_in_flight"] == MAX_IN_FLIGHT and health["in_flight"] == 0
    status, openapi, _ = server.request("GET", "/openapi.json")
    assert status == 200 and "/predict" in openapi["paths"]


# ------------------------------------------------------------------ item 1: stalled clients


def test_stalled_bodies_do_not_lock_clients_out(server: Server) -> None:
    """1,030 POSTs that declare 1,000 bytes and send 12 held the replica's request slots forever, and /health and
    every real request timed out. Now bodies are read under a timeout (408) before a request takes a model slot."""
    attackers = 1030
    _open_files(attackers + 256)
    stalled: list[socket.socket] = []
    heads: list[socket.socket] = []  # and a few that never finish their request head
    try:
        for _ in range(attackers):
            sock = socket.create_connection((HOST, server.port), timeout=5)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b'{"texts": ["a')
            stalled.append(sock)
        for _ in range(20):
            sock = socket.create_connection((HOST, server.port), timeout=5)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            heads.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        health = server.health(timeout=2)
        status, answer, _ = server.predict(["great film"], timeout=2)
        assert time.monotonic() - started < 2.0
        assert health["status"] == "ok" and status == 200 and answer["predictions"][0]["label"] == "pos"
        assert health["connections"] > attackers // 2  # the attack is under way

        time.sleep(CLIENT_TIMEOUT_S + 1.0)  # every stalled client has had its time
        lines = [_status_line(sock) for sock in stalled]
        answered = {line: lines.count(line) for line in set(lines)}
        # 408 for the bodies that stalled; 503 for the few over --max-connections (1,100 with the real clients)
        assert set(answered) <= {"HTTP/1.1 408 Request Timeout", "HTTP/1.1 503 Service Unavailable"}, answered
        assert answered.get("HTTP/1.1 408 Request Timeout", 0) >= attackers - 100
        assert [_status_line(sock) for sock in heads] == [""] * len(heads)  # closed without an answer
    finally:
        for sock in stalled + heads:
            sock.close()
    deadline = time.monotonic() + 5
    while server.health()["connections"] > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.health()["connections"] == 1  # this request's


# ------------------------------------------------------------------ items 1 and 2: a saturated model


def test_saturated_model_keeps_health_answering_and_sheds_load(server: Server) -> None:
    """Four requests of ten 99,990-character texts blocked /health for 13.9 s, the model running on the event
    loop. Now the model runs on a thread of the replica (which keeps answering the front's stats calls), /health is
    the front's, requests past --max-in-flight get 503 at once, and one request's characters are bounded (413)."""
    heavy = [_text(99_990, seed) for seed in range(10)]
    results: list[tuple[int, int] | str] = []

    def send(texts: list[str]) -> None:
        try:
            status, answer, _ = server.predict(texts, timeout=120)
            results.append((status, len(answer.get("predictions", []))))
        except OSError as err:
            results.append(repr(err))

    def start(n: int, texts: list[str]) -> None:
        for _ in range(n):
            clients.append(threading.Thread(target=send, args=(texts,)))
            clients[-1].start()

    def sample() -> dict[str, Any]:
        started = time.monotonic()
        health = server.health(timeout=2)
        health_s.append(time.monotonic() - started)
        ages.append(health["model_answered_s_ago"])
        return health

    def wait_in_flight(n: int) -> None:
        deadline = time.monotonic() + 30
        while sample()["in_flight"] < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.health()["in_flight"] == n

    clients: list[threading.Thread] = []
    ages: list[float] = []
    health_s: list[float] = []
    try:
        start(8, heavy)  # 8 requests of 999,900 characters
        wait_in_flight(8)
        over = [_text(95_000, seed) for seed in range(11)]  # 1,045,000 characters in one request
        status, answer, _ = server.predict(over, timeout=2)
        assert status == 413 and "characters in one request" in answer["error"]
        start(MAX_IN_FLIGHT - 8, ["great film"])  # they wait behind the heavy batches
        wait_in_flight(MAX_IN_FLIGHT)
        status, answer, headers = server.predict(["great film"], timeout=2)
        assert status == 503 and headers.get("retry-after") == "1", answer
        deadline = time.monotonic() + 120
        while any(c.is_alive() for c in clients) and time.monotonic() < deadline:
            sample()
            time.sleep(0.2)
    finally:
        for client in clients:
            client.join(timeout=120)
    assert sorted(results) == [(200, 1)] * (MAX_IN_FLIGHT - 8) + [(200, 10)] * 8, results
    assert max(health_s) < 1.0, health_s
    # the replica's event loop answered the front all along (it stalled for whole batches, seconds, before)
    assert len(ages) >= 5 and max(ages) < 1.2, ages


# ------------------------------------------------------------------ item 3: SIGTERM


def test_sigterm_under_load_answers_every_accepted_request(server: Server) -> None:
    """SIGTERM reset 10 of 16 requests under load. Now the server stops accepting, answers what it received, then
    exits 0, leaving no process behind. Runs last: it stops the module's server."""
    texts = [_text(50_000, seed) for seed in range(10)]
    results: list[tuple[int, int] | str] = []

    def send() -> None:
        try:
            status, answer, _ = server.predict(texts, timeout=120)
            results.append((status, len(answer.get("predictions", []))))
        except OSError as err:
            results.append(repr(err))

    clients = [threading.Thread(target=send) for _ in range(MAX_IN_FLIGHT)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 30
    while server.health()["in_flight"] < MAX_IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.02)
    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.5)
    if sum(c.is_alive() for c in clients):  # still draining: new connections are refused by now
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, server.port), timeout=2).close()
    for client in clients:
        client.join(timeout=120)
    assert results == [(200, 10)] * MAX_IN_FLIGHT
    assert server.process.wait(timeout=90) == 0, server.output()[-3000:]
    assert time.monotonic() - signalled < 90
    assert "Traceback" not in server.output()
    time.sleep(1)
    assert server.started() == []


def test_sigterm_during_start_up_leaves_no_process(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """SIGTERM while Ray starts ended in an abort with a C++ stack dump, an exit code of 15, or Ray processes left
    running. Now start-up finishes the step under way, and the server shuts everything down and exits 0."""
    starting = Server(tiny_bundle_dir, tmp_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and starting.process.poll() is None:
            if any(p.name() in ("gcs_server", "raylet") for p in starting.started() if p.pid != starting.process.pid):
                break
            time.sleep(0.05)
        assert starting.process.poll() is None, starting.output()
        starting.process.send_signal(signal.SIGTERM)
        assert starting.process.wait(timeout=120) == 0, starting.output()[-3000:]
        assert "Traceback" not in starting.output() and "serving " not in starting.output()
        time.sleep(1)
        assert starting.started() == []
    finally:
        starting.end()


# ------------------------------------------------------------------ item 4: refusals before anything starts


def _refusal(bundle: Path, folder: Path, *args: str) -> tuple[int, str, float]:
    code = (
        "import sys\nfrom lstm_onnx.cli import app\n"
        "try:\n"
        f"    app(['serve', {str(bundle)!r}, *sys.argv[1:]], prog_name='lstm-onnx')\n"
        "finally:\n"
        "    print('ray imported:', 'ray' in sys.modules)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ray imported: False", done.stdout + done.stderr
    return done.returncode, done.stderr, time.monotonic() - started


def test_serve_refuses_a_tagger_before_starting_anything(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    code, err, seconds = _refusal(tiny_tag_bundle_dir, tmp_path, "--port", str(_free_port()))
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err and seconds < 30


def test_serve_refuses_a_broken_bundle_before_starting_anything(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "model.onnx").write_bytes(b"not a model")
    code, err, _ = _refusal(bundle_copy, tmp_path, "--port", str(_free_port()))
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: "), err


def test_serve_refuses_a_port_in_use_before_starting_anything(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, err, _ = _refusal(tiny_bundle_dir, tmp_path, "--port", str(port))
    assert code == 1 and err.count("\n") == 1 and f"Cannot listen on 127.0.0.1:{port}" in err, err
    assert "pick another --port" in err
