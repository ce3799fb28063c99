"""Batch-shape levers at fixed shapes, ORT only, interleaved: row sub-batches, sequence_lens, splitting over threads.

Usage: python benchmarks/shape_levers.py FP32.onnx INT8.onnx [--shapes 32x16,32x64,32x256,16x128] [--runs 15]
[--json OUT]

For each model and shape (random ids, every row the full length), against one call of all B rows on a 1-thread
session: the same rows as calls of 16, 8 and 4 rows; the model with ``sequence_lens`` removed from its LSTM nodes
(the same function when no row is padded: does the padding logic cost anything?); and, for two threads, one call
on a 2-thread session against two concurrent calls (Python threads) of B/2 rows on the 1-thread session. Outputs
are checked against the one-call result first (fp32 exactly; int8 to 5e-3: it quantizes activations per call).
Reports p50 ms and each plan's time relative to its reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session_levers import cpu_session  # noqa: E402 - a sibling script, found through the line above


def _without_sequence_lens(model: Path, out: Path) -> Path:
    proto = onnx.load(str(model))
    for node in proto.graph.node:
        if node.op_type in ("LSTM", "DynamicQuantizeLSTM") and len(node.input) > 4:
            node.input[4] = ""
    onnx.save(proto, str(out))
    return out


def main() -> None:
    """Interleave the plans for each model and shape; print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32", type=Path)
    parser.add_argument("int8", type=Path)
    parser.add_argument("--shapes", default="32x16,32x64,32x256,16x128")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    pool = ThreadPoolExecutor(2)
    work = Path(tempfile.mkdtemp(prefix="lstm-onnx-shape-levers-"))
    rng = np.random.default_rng(0)
    rows: dict[str, Any] = {}
    for kind, model in (("fp32", args.fp32), ("int8", args.int8)):
        one, two = cpu_session(model, 1), cpu_session(model, 2)
        bare = cpu_session(_without_sequence_lens(model, work / f"{kind}-no-seq-lens.onnx"), 1)
        for shape in args.shapes.split(","):
            batch, steps = (int(x) for x in shape.lower().split("x"))
            ids = rng.integers(2, 5000, size=(batch, steps), dtype=np.int64)
            full = {INPUT_IDS: ids, LENGTHS: np.full(batch, steps, dtype=np.int64)}

            def parts(size: int, full: dict[str, np.ndarray] = full) -> list[dict[str, np.ndarray]]:
                return [{k: v[i : i + size] for k, v in full.items()} for i in range(0, len(full[LENGTHS]), size)]

            def calls(session: ort.InferenceSession, feeds: list[dict[str, np.ndarray]]) -> Callable[[int], Any]:
                return lambda _: np.concatenate([session.run(None, f)[0] for f in feeds])

            def concurrent(feeds: list[dict[str, np.ndarray]], one: ort.InferenceSession = one) -> Callable[[int], Any]:
                return lambda _: np.concatenate([f.result()[0] for f in [pool.submit(one.run, None, x) for x in feeds]])

            plans: dict[str, Callable[[int], Any]] = {f"1 call of {batch}": calls(one, [full])}
            plans.update({f"calls of {size}": calls(one, parts(size)) for size in (16, 8, 4) if size < batch})
            plans["no sequence_lens"] = calls(bare, [full])
            plans["2 threads, 1 call"] = calls(two, [full])
            plans["2 threads, 2 concurrent halves"] = concurrent(parts(batch // 2))
            want = plans[f"1 call of {batch}"](0)
            for name, plan in plans.items():
                np.testing.assert_allclose(plan(0), want, atol=0 if kind == "fp32" else 5e-3, rtol=0, err_msg=name)
            p50 = {name: summarize(s).p50_ms for name, s in interleave(plans, runs=args.runs).items()}
            one_thread, two_threads = p50[f"1 call of {batch}"], p50["2 threads, 1 call"]
            reference = {name: two_threads if name.startswith("2 threads") else one_thread for name in p50}
            key = f"{kind} B={batch} T={steps}"
            rows[key] = {"p50_ms": p50, "time_vs_reference": {n: p50[n] / reference[n] for n in p50}}
            print(key.ljust(22), "  ".join(f"{n}: {p50[n]:.1f} ms ({p50[n] / reference[n]:.2f})" for n in p50))
    if args.json:
        result = {
            "command": shlex.join(["python", *sys.argv]),
            "onnxruntime": ort.__version__,
            "runs": args.runs,
            "reference": "1 call of B rows on a 1-thread session; for the 2-thread plans, 1 call on a 2-thread session",
            "load_average_after": os.getloadavg(),
            "rows": rows,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
