"""One thread or two: ORT sessions of the same model with 1 and 2 intra-op threads, interleaved in one run.

Usage: python benchmarks/threads.py MODEL.onnx [MODEL.onnx ...] [--data PATH] [--runs 30] [--json OUT]

Cases: one 16-token text, one long review (the longest of the sample, real tokens), and batches of 8 and 32 real
IMDB test reviews bucketed by length as the predictor cuts them. Every session has spinning off (the runtime's
default). Reports each p50 and the 2-thread / 1-thread time ratio (below 1: the second thread helps).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from lstm_onnx.bench.backends import feed
from lstm_onnx.bench.cases import encode_texts, fixed_case, real_case
from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample
from lstm_onnx.runtime.session import SessionConfig, create_session

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"


def main() -> None:
    """Time every model at 1 and 2 threads on each case; print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="model.onnx files (first: its bundle's tokenizer).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    bundle = load_bundle(args.models[0].parent)
    sample = stratified_sample(read_dataset(args.data, split="test"), 32 * args.runs, 0)
    ids = encode_texts(sample.texts, bundle.tokenizer, bundle.vocab)
    longest = max(ids, key=len)
    long_case = (np.asarray([longest], dtype=np.int64), np.asarray([len(longest)], dtype=np.int64))
    cases = {
        "B=1 T=16": fixed_case(1, 16, len(bundle.vocab)).batches,
        f"B=1 one long review (T={len(longest)})": [long_case],
        "B=8 real": real_case(ids, 8, args.runs).batches,
        "B=32 real": real_case(ids, 32, args.runs).batches,
    }
    sessions = {
        f"{model.parent.name}/{model.name} {threads}t": create_session(
            model, SessionConfig(providers="cpu", intra_op_threads=threads, allow_spinning=False)
        )
        for model in args.models
        for threads in (1, 2)
    }
    rows = []
    for case, batches in cases.items():
        feeds = [feed(i, n) for i, n in batches]
        contestants = {name: (lambda rep, s=s, f=feeds: s.run_all(f[rep % len(f)])) for name, s in sessions.items()}
        load = os.getloadavg()[0]
        samples = interleave(contestants, runs=args.runs, warmup=2, idle_s=0.05)
        p50 = {name: summarize(s).p50_ms for name, s in samples.items()}
        for model in args.models:
            key = f"{model.parent.name}/{model.name}"
            rows.append(
                {
                    "case": case,
                    "model": key,
                    "p50_ms_1_thread": p50[f"{key} 1t"],
                    "p50_ms_2_threads": p50[f"{key} 2t"],
                    "ratio_2_over_1": p50[f"{key} 2t"] / p50[f"{key} 1t"],
                    "load_average": load,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    result = {"command": shlex.join(["python", *sys.argv]), "runs": args.runs, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
