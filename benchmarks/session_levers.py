"""fp32 and int8 levers at batch 32 of real reviews, interleaved: session memory options and sub-batch shapes.

Usage: python benchmarks/session_levers.py FP32.onnx INT8.onnx [--data PATH] [--runs 30] [--threads 1] [--json OUT]

Every repetition takes one length-bucketed batch of 32 real IMDB test reviews; each contestant computes all 32:
the runtime's default session in one call, the same session on sub-batches of 8 or 16 (cut from the sorted batch,
each trimmed to its own longest text), and sessions with ORT's memory pattern or CPU arena off. Outputs are checked
equal to the one-call result before timing (fp32 to 1e-4; int8 to 5e-3, its activation ranges being per call).
Reports p50 ms per 32 texts and each ratio to the default.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from lstm_onnx.bench.backends import feed
from lstm_onnx.bench.cases import encode_texts, real_case
from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample
from lstm_onnx.runtime.session import SessionConfig

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"


def cpu_session(model: Path, threads: int, **options: bool) -> ort.InferenceSession:
    """A CPU session as the runtime builds it (spinning off), with ``options`` set on its SessionOptions."""
    opts = SessionConfig(providers="cpu", intra_op_threads=threads, allow_spinning=False).session_options()
    for name, value in options.items():
        setattr(opts, name, value)
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def _split(ids: np.ndarray, lengths: np.ndarray, size: int) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(lengths), size):
        part = lengths[start : start + size]
        out.append(feed(np.ascontiguousarray(ids[start : start + size, : int(part.max())]), part))
    return out


def main() -> None:
    """Interleave the levers, print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32", type=Path)
    parser.add_argument("int8", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    bundle = load_bundle(args.fp32.parent)
    sample = stratified_sample(read_dataset(args.data, split="test"), 32 * args.runs, 0)
    batches = real_case(encode_texts(sample.texts, bundle.tokenizer, bundle.vocab), 32, args.runs).batches
    plans: dict[str, tuple[ort.InferenceSession, int]] = {}
    for kind, model in (("fp32", args.fp32), ("int8", args.int8)):
        default = cpu_session(model, args.threads)
        plans[f"{kind} B=32 (default)"] = (default, 32)
        plans[f"{kind} 2 x B=16"] = (default, 16)
        plans[f"{kind} 4 x B=8"] = (default, 8)
        plans[f"{kind} mem pattern off"] = (cpu_session(model, args.threads, enable_mem_pattern=False), 32)
        plans[f"{kind} cpu arena off"] = (cpu_session(model, args.threads, enable_cpu_mem_arena=False), 32)
    feeds = {size: [_split(ids, lengths, size) for ids, lengths in batches] for size in (8, 16, 32)}
    for name, (session, size) in plans.items():  # every plan computes the same logits
        want = plans[name.split()[0] + " B=32 (default)"][0].run(None, feeds[32][0][0])[0]
        got = np.concatenate([session.run(None, f)[0] for f in feeds[size][0]])
        # int8 quantizes activations with each call's own range, so a sub-batch moves logits by ~1e-3.
        np.testing.assert_allclose(got, want, atol=1e-4 if name.startswith("fp32") else 5e-3, rtol=0, err_msg=name)

    def contestant(session: ort.InferenceSession, size: int) -> Any:
        return lambda rep: [session.run(None, f) for f in feeds[size][rep % len(batches)]]

    load = os.getloadavg()
    samples = interleave({n: contestant(s, b) for n, (s, b) in plans.items()}, runs=args.runs)
    p50 = {name: summarize(s).p50_ms for name, s in samples.items()}
    rows = {
        name: {"p50_ms_per_32_texts": ms, "ratio_to_default": ms / p50[name.split()[0] + " B=32 (default)"]}
        for name, ms in p50.items()
    }
    result = {
        "command": shlex.join(["python", *sys.argv]),
        "threads": args.threads,
        "runs": args.runs,
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
