"""The same models under several ONNX Runtime releases, one process per release, alternating rounds.

Usage: python benchmarks/ort_versions.py MODEL.onnx [MODEL.onnx ...] --python VENV/bin/python [--python ...]
[--shapes 8x256,32x128] [--rounds 3] [--runs 7] [--json OUT]

Each ``--python`` is an interpreter with one onnxruntime release and numpy installed (for example
``python -m venv /tmp/ort-1.22 && /tmp/ort-1.22/bin/pip install onnxruntime==1.22.1 numpy``). Every round runs
each interpreter once in turn (so the machine's drift falls on all releases alike); each process times every model
and shape ``--runs`` times on one thread (spinning off, 20 ms idle before each call, random ids, every row the full
length) and reports medians. Models whose IR version is newer than an old release reads should be saved with a
lower IR version first (the operators of lstm-onnx bundles are opset 17). Reports each release's median of the
rounds' medians and its ratio to the first interpreter's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort

models, shapes, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
out = {}
for path in models:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    for batch, steps in shapes:
        feed = {"input_ids": rng.integers(2, 5000, size=(batch, steps)).astype(np.int64),
                "lengths": np.full(batch, steps, np.int64)}
        session.run(None, feed)
        times = []
        for _ in range(runs):
            time.sleep(0.02)
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
        out[f"{path.rsplit('/', 1)[-1]} B={batch} T={steps}"] = float(np.median(times))
print(json.dumps({"version": ort.__version__, "p50_s": out}))
"""


def main() -> None:
    """Alternate the interpreters, print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--python", action="append", required=True, help="Interpreter with one ORT release.")
    parser.add_argument("--shapes", default="8x256,32x128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    shapes = [[int(x) for x in s.lower().split("x")] for s in args.shapes.split(",")]
    models = [str(m.resolve()) for m in args.models]
    samples: dict[str, dict[str, list[float]]] = {}
    versions: dict[str, str] = {}
    for _ in range(args.rounds):
        for python in args.python:
            done = subprocess.run(
                [python, "-c", CHILD, json.dumps(models), json.dumps(shapes), str(args.runs)],
                capture_output=True,
                text=True,
                check=True,
            )
            record = json.loads(done.stdout.strip().splitlines()[-1])
            versions[python] = record["version"]
            for case, seconds in record["p50_s"].items():
                samples.setdefault(case, {}).setdefault(record["version"], []).append(seconds)
    order = [versions[p] for p in args.python]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for case, by_version in samples.items():
        base = float(np.median(by_version[order[0]]))
        medians = {v: float(np.median(by_version[v])) for v in order}
        table[case] = {v: {"p50_ms": 1e3 * medians[v], "time_vs_first": medians[v] / base} for v in order}
    print("case".ljust(60), *(v.rjust(18) for v in order))
    for case, row in table.items():
        name = case.replace(str(Path.cwd()) + os.sep, "")
        cells = (f"{row[v]['p50_ms']:8.1f} ms {row[v]['time_vs_first']:5.2f}".rjust(18) for v in order)
        print(name[-60:].ljust(60), *cells)
    if args.json:
        result = {
            "command": shlex.join(["python", *sys.argv]),
            "versions": order,
            "rounds": args.rounds,
            "runs": args.runs,
            "load_average_after": os.getloadavg(),
            "rows": table,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
