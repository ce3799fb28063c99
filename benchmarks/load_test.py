"""Load test of `lstm-onnx serve` on loopback: N concurrent clients each sending single reviews.

    python benchmarks/load_test.py BUNDLE INPUT.jsonl [--clients 1,8,32] [--requests 400] [--max-seconds 60]
                                  [--malformed-every 0]

Starts the Ray Serve app on 127.0.0.1 (a free port), and for each client count sends `--requests` single-review
requests (stopping early after `--max-seconds`), then shuts Ray down. Reports requests/s, p50/p99 latency, failed
requests, the mean batch size the server formed in that phase (from /health), and checks every answer against the
in-process prediction. With `--malformed-every K`, every K-th request is malformed instead (bad JSON, wrong types,
empty text, too many texts, oversized body): each must get a 4xx JSON error and the good ones their answers.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.records import prediction_record
from lstm_onnx.runtime.serve import ServeSettings, start_server, stop_server

HOST = "127.0.0.1"  # loopback only, always


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


def _get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def run_phase(port: int, clients: int, work: list[tuple[bytes, Any]], max_seconds: float) -> dict[str, Any]:
    """Send ``work`` (body, expected record or None for malformed) from ``clients`` threads; collect results."""
    queue = iter(enumerate(work))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    refused = [0]  # malformed requests answered with a 4xx JSON error
    deadline = time.perf_counter() + max_seconds
    before = _get(port, "/health")

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
    after = _get(port, "/health")
    batches = after["batches"] - before["batches"]
    texts = after["texts"] - before["texts"]
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "good_requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean_batch_size": texts / batches if batches else 0.0,
        "malformed_refused_4xx": refused[0],
        "failed": len(failures),
        "failures": failures[:5],
        "health_after": after["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("input", type=Path)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--malformed-every", type=int, default=0)
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in itertools.islice(fh, args.requests)]
    model = TextClassifier.load(args.bundle, providers="cpu")
    expected = [prediction_record(t, p) for t, p in zip(texts, model.predict(texts), strict=True)]
    # JSON round trip: what a client receives for the in-process record.
    expected = [json.loads(json.dumps(e)) for e in expected]
    settings = ServeSettings(bundle=str(args.bundle.resolve()))
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    start_server(settings, HOST, port)
    try:
        for clients in (int(c) for c in args.clients.split(",")):
            work: list[tuple[bytes, Any]] = []
            for i, (text, record) in enumerate(zip(texts, expected, strict=True)):
                if args.malformed_every and i % args.malformed_every == 0:
                    work.append((_malformed(i // args.malformed_every, settings), None))
                work.append((json.dumps({"text": text}).encode(), record))
            result = run_phase(port, clients, work, args.max_seconds)
            print(json.dumps(result), flush=True)
    finally:
        stop_server()


if __name__ == "__main__":
    sys.exit(main())
