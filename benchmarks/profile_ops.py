"""Where an ONNX Runtime session spends its time, per operator (ORT's own profiler, ``enable_profiling``).

Usage: python benchmarks/profile_ops.py MODEL.onnx [--batch 32] [--length 64] [--runs 10]

Builds the session from ``runtime.session.SessionConfig`` (CPU, 1 thread, spinning off), runs random ids of the
given shape, and prints each operator type's share of kernel time and its milliseconds per run.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from lstm_onnx.runtime.session import SessionConfig

WARMUP = 3


def op_micros(model: Path, feeds: dict[str, np.ndarray], runs: int, threads: int = 1) -> collections.Counter[str]:
    """Microseconds of kernel time per operator type over ``WARMUP + runs`` calls (ORT's own profiler).

    The session comes from ``runtime.session.SessionConfig`` (CPU, ``threads`` intra-op threads, spinning off).
    """
    options = SessionConfig(providers="cpu", intra_op_threads=threads).session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="lstm-onnx-ort-profile-")) / "ort")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    for _ in range(WARMUP + runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    per_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    return per_op


def main() -> None:
    """Profile and print the per-operator breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    ids = np.random.default_rng(0).integers(2, 20_000, (args.batch, args.length), dtype=np.int64)
    feeds = {"input_ids": ids, "lengths": np.full(args.batch, args.length, dtype=np.int64)}
    per_op = op_micros(args.model, feeds, runs=args.runs, threads=args.threads)
    total = sum(per_op.values())
    runs = args.runs + WARMUP
    for op, micros in per_op.most_common(10):
        print(f"{op:24s} {micros / total:6.1%} {micros / runs / 1e3:8.2f} ms/run")


if __name__ == "__main__":
    main()
