"""Batch scoring side by side: `predict` single process vs `score --engine local` (1 and 2 workers) vs Ray Data.

    python benchmarks/batch_scoring.py BUNDLE INPUT.jsonl [--workers 2] [--out-dir /tmp/scoring]

INPUT holds one {"id", "text"} object per line. Every run scores the same file through the installed `lstm-onnx`
script; the script then checks that every engine gives the labels of `predict` and probabilities within 1e-6, row
for row in input order, and prints texts/s and the ratios to `predict`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).with_name("lstm-onnx"))


def _run(args: list[str], stdout_path: Path | None = None) -> float:
    start = time.perf_counter()
    with open(stdout_path, "w", encoding="utf-8") if stdout_path else open("/dev/null", "w") as out:
        subprocess.run([SCRIPT, *args], check=True, stdout=out, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _rows(path: Path) -> list[dict[str, object]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("input", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/lstm-onnx-scoring"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        "predict (1 process)": (["predict", args.bundle, "--file", str(args.input)], args.out_dir / "predict.jsonl"),
        "local, 1 worker": (["--engine", "local", "--workers", "1"], args.out_dir / "local1.jsonl"),
        f"local, {args.workers} workers": (["--engine", "local", "--workers", str(args.workers)], None),
        f"ray data, {args.workers} actors": (["--engine", "ray", "--workers", str(args.workers)], None),
    }
    seconds: dict[str, float] = {}
    outputs: dict[str, Path] = {}
    for i, (name, (extra, path)) in enumerate(runs.items()):
        if i == 0 and path is not None:
            seconds[name] = _run(extra, stdout_path=path)
            outputs[name] = path
            continue
        path = path or args.out_dir / f"run{i}.jsonl"
        seconds[name] = _run(["score", args.bundle, "--file", str(args.input), "-o", str(path), *extra])
        outputs[name] = path
    reference = _rows(outputs["predict (1 process)"])
    ids = [json.loads(line).get("id") for line in open(args.input, encoding="utf-8")]
    n = len(reference)
    print(f"{n} texts from {args.input.name}")
    print(f"{'run':<24} {'seconds':>8} {'texts/s':>8} {'× predict':>9}  labels same  max |Δprob|  ids in order")
    for name, path in outputs.items():
        rows = _rows(path)
        same = len(rows) == n and all(r["label"] == e["label"] for r, e in zip(rows, reference, strict=True))
        delta = max(
            abs(r["probabilities"][k] - e["probabilities"][k])
            for r, e in zip(rows, reference, strict=True)
            for k in e["probabilities"]
        )
        in_order = name.startswith("predict") or [r["id"] for r in rows] == ids
        ratio = seconds["predict (1 process)"] / seconds[name]
        speed = f"{seconds[name]:>8.1f} {n / seconds[name]:>8.0f} {ratio:>9.2f}"
        print(f"{name:<24} {speed}  {same!s:>11}  {delta:>11.1e}  {in_order}")


if __name__ == "__main__":
    main()
