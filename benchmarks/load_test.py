"""Load test of `lstm-onnx serve` on loopback: N concurrent clients sending single reviews, with and without an
attacker holding stalled connections, in one run against one server.

    python benchmarks/load_test.py BUNDLE INPUT.jsonl [--clients 1,8,32] [--requests 400] [--max-seconds 60]
                                  [--attack 0,1030] [--malformed-every 0] [--out results.json] [-- SERVE OPTIONS]

Starts `lstm-onnx serve BUNDLE` (its defaults, or the options after `--`) on 127.0.0.1 (a free port), and for each
attack size and client count sends `--requests` single-review requests (stopping early after `--max-seconds`; each
request waits at most 60 s), then stops the server with SIGTERM. With an attack of K, an attacker keeps K connections
open that each send a `POST /predict` head declaring a 1,000-byte body and then 12 bytes of it, opening a new one
whenever the server drops one, for the whole phase. A prober sends `GET /health` every 0.2 s (2 s timeout)
throughout. Each phase reports requests/s (correct answers only), p50/p99 latency, failed requests (wrong answer,
error status or no answer), /health latency and failures, the mean batch size the server formed, and what the
attacker's connections got. Every answer is checked against the in-process prediction. With `--malformed-every K`,
every K-th request is malformed instead (bad JSON, wrong types, empty text, too many texts, oversized body): each
must get a 4xx JSON error.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.records import prediction_record
from lstm_onnx.runtime.serve_api import ServeSettings

HOST = "127.0.0.1"  # loopback only, always
STALLED_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"


def _malformed(i: int, settings: ServeSettings) -> bytes:
    kinds = [
        b"{not json",
        b'{"texts": [1, 2]}',
        b'{"text": "   "}',
        json.dumps({"texts": ["ok"] * (settings.max_texts + 1)}).encode(),
        json.dumps({"text": "x" * (settings.max_body_bytes + 10)}).encode(),
        b'{"prompt": "hello"}',
    ]
    return kinds[i % len(kinds)]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, Any]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _get(port: int, path: str, timeout: float = 30) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def _counters(port: int) -> tuple[int, int] | None:
    """``(batches, texts)`` from /health, or ``None`` when it does not answer within 10 s (a server locked out)."""
    try:
        health = _get(port, "/health", timeout=10)
        return int(health["batches"]), int(health["texts"])
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return None


def _percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile in ms; ``None`` (JSON null) when nothing was measured."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


class Attacker:
    """Keeps ``size`` stalled connections open until ``stop``; counts what the server answered on them."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.opened = 0
        self.answers: dict[str, int] = {}
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Attacker:
        if self.size:
            self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self.size:
            self._thread.join(timeout=30)
        return {"stalled_connections": self.size, "opened": self.opened, "answers": self.answers}

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((HOST, self.port), timeout=5)
            sock.sendall(STALLED_HEAD + b'{"text": "ab')
            sock.setblocking(False)
            self.opened += 1
            return sock
        except OSError:
            self.refused += 1
            return None

    def _run(self) -> None:
        socks = [s for s in (self._open() for _ in range(self.size)) if s is not None]
        while not self._stop.wait(0.25):
            alive = []
            for sock in socks:
                try:
                    data = sock.recv(64)
                except BlockingIOError:
                    alive.append(sock)
                    continue
                except OSError:
                    data = b""
                line = data.split(b"\r\n", 1)[0].decode("latin-1") or "closed without an answer"
                self.answers[line] = self.answers.get(line, 0) + 1
                sock.close()
            socks = alive + [s for s in (self._open() for _ in range(self.size - len(alive))) if s is not None]
        for sock in socks:
            sock.close()


class Prober:
    """``GET /health`` every 0.2 s (2 s timeout) until ``stop``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=30)
        return {
            "health_probes": len(self.latencies) + self.failures,
            "health_failed": self.failures,
            "health_p50_ms": _percentile(self.latencies, 0.5),
            "health_max_ms": _percentile(self.latencies, 1.0),
        }

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            start = time.perf_counter()
            try:
                if _get(self.port, "/health", timeout=2)["status"] != "ok":
                    raise ValueError("not ok")
                self.latencies.append(time.perf_counter() - start)
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                self.failures += 1


def run_phase(port: int, clients: int, work: list[tuple[bytes, Any]], max_seconds: float) -> dict[str, Any]:
    """Send ``work`` (body, expected record or None for malformed) from ``clients`` threads; collect results."""
    queue = iter(enumerate(work))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    refused = [0]  # malformed requests answered with a 4xx JSON error
    deadline = time.perf_counter() + max_seconds
    before = _counters(port)

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            _, (body, expected) = item
            start = time.perf_counter()
            try:
                status, answer = _post(conn, "/predict", body)
            except (OSError, http.client.HTTPException, json.JSONDecodeError) as err:
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                status, answer = -1, {"error": repr(err)}
            elapsed = time.perf_counter() - start
            with lock:
                if expected is None:
                    if 400 <= status < 500 and isinstance(answer.get("error"), str):
                        refused[0] += 1
                    else:
                        failures.append(f"malformed got {status}: {str(answer)[:200]}")
                else:
                    latencies.append(elapsed)
                    if status != 200 or answer.get("predictions") != [expected]:
                        failures.append(f"good request got {status}: {str(answer)[:200]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    after = _counters(port)
    batches = after[0] - before[0] if after and before else None
    texts = after[1] - before[1] if after and before else None
    good = len(latencies) - sum(f.startswith("good") for f in failures)
    return {
        "clients": clients,
        "requests": len(latencies),
        "answered_correctly": good,
        "requests_per_s": good / wall,
        "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99),
        "mean_batch_size": texts / batches if batches and texts is not None else None,
        "malformed_refused_4xx": refused[0],
        "failed": len(failures),
        "failures": failures[:5],
    }


def start_server(bundle: Path, serve_args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``lstm-onnx serve`` on a free loopback port; returns once it serves (or raises with its output)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "lstm_onnx.cli", "serve", str(bundle), "--port", str(port), *serve_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        if b"\nserving " in b"\n" + log.read_bytes():
            return server, port
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("input", type=Path)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--attack", default="0,1030", help="stalled connections per phase set, e.g. 0,1030")
    parser.add_argument("--malformed-every", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results (and the set-up) to this JSON file")
    parser.add_argument("serve_args", nargs="*", help="options for `lstm-onnx serve`, after --")
    args = parser.parse_args()
    attacks = [int(a) for a in args.attack.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(attacks) + 512
    if soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    with open(args.input, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in itertools.islice(fh, args.requests)]
    model = TextClassifier.load(args.bundle, providers="cpu")
    expected = [prediction_record(t, p) for t, p in zip(texts, model.predict(texts), strict=True)]
    # JSON round trip: what a client receives for the in-process record.
    expected = [json.loads(json.dumps(e)) for e in expected]
    settings = ServeSettings(bundle=str(args.bundle.resolve()))
    log = Path(f"load-test-serve-{os.getpid()}.log")
    server, port = start_server(args.bundle.resolve(), args.serve_args, log)
    results = []
    try:
        for attack, clients in itertools.product(attacks, (int(c) for c in args.clients.split(","))):
            work: list[tuple[bytes, Any]] = []
            for i, (text, record) in enumerate(zip(texts, expected, strict=True)):
                if args.malformed_every and i % args.malformed_every == 0:
                    work.append((_malformed(i // args.malformed_every, settings), None))
                work.append((json.dumps({"text": text}).encode(), record))
            attacker = Attacker(port, attack).start()
            time.sleep(1.0 if attack else 0.0)  # the attack is in place before the clients start
            prober = Prober(port).start()
            result = run_phase(port, clients, work, args.max_seconds)
            result.update(prober.stop())
            result["attack"] = attacker.stop()
            results.append(result)
            print(json.dumps(result), flush=True)
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        log.unlink(missing_ok=True)
    print(json.dumps({"server_exit_code": code}), flush=True)
    if args.out:
        setup = {
            "command": "python benchmarks/load_test.py " + " ".join(sys.argv[1:]),
            "serve_options": args.serve_args or "defaults",
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "server_exit_code": code,
        }
        args.out.write_text(json.dumps({"setup": setup, "phases": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
