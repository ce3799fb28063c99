"""End to end through ``TextClassifier`` at several batch sizes, interleaved: which ``batch_size`` to serve with.

Usage: python benchmarks/batch_size_e2e.py BUNDLE [BUNDLE ...] [--sizes 8,16,32] [--max-tokens 2048] [--chunk 64]
[--runs 30] [--json OUT]

Each repetition scores one chunk of ``--chunk`` random IMDB test reviews (unsorted, as a caller sends them) with
every (bundle, batch size) pair, and with the default batch size under each padded-token cap of ``--max-tokens``
(``TextClassifier(max_batch_tokens=...)``); reports texts/s and the ratio to the runtime's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from lstm_onnx.bench.timing import interleave
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample
from lstm_onnx.runtime.predictor import DEFAULT_BATCH_SIZE, TextClassifier

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"


def main() -> None:
    """Interleave every (bundle, batch size); print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="8,16,32")
    parser.add_argument("--max-tokens", default="", help="Comma-separated padded-token caps at the default size.")
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    texts = stratified_sample(read_dataset(args.data, split="test"), args.chunk * args.runs, 1).texts
    chunks = [texts[i : i + args.chunk] for i in range(0, len(texts), args.chunk)]
    sizes = [int(s) for s in args.sizes.split(",")]
    contestants = {}
    for path in args.bundles:
        bundle = load_bundle(path)
        for size in sizes:
            model = TextClassifier(bundle, batch_size=size, truncate=True)
            contestants[f"{path.name} B={size}"] = lambda rep, m=model: m.predict_proba(chunks[rep % len(chunks)])
        for cap in (int(c) for c in args.max_tokens.split(",") if c):
            model = TextClassifier(bundle, max_batch_tokens=cap, truncate=True)
            name = f"{path.name} B={DEFAULT_BATCH_SIZE} max_batch_tokens={cap}"
            contestants[name] = lambda rep, m=model: m.predict_proba(chunks[rep % len(chunks)])
    load = os.getloadavg()
    samples = interleave(contestants, runs=args.runs)
    rates = {name: args.chunk * args.runs / sum(s) for name, s in samples.items()}
    rows = {
        name: {"texts_per_s": rate, "ratio_to_default": rate / rates[f"{name.split()[0]} B={DEFAULT_BATCH_SIZE}"]}
        for name, rate in rates.items()
    }
    result = {
        "command": shlex.join(["python", *sys.argv]),
        "chunk": args.chunk,
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
