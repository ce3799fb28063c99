"""End to end, the tagger under the runtime's default threading (row parts) against threads=1.

Usage (from the repository root): python benchmarks/tagger_threads_e2e.py BUNDLE [--data ../shared/data/ud-ewt]
[--rounds 5] [--json OUT]

``TokenTagger.tag_tokens`` on every sentence of the test split (the tagger's own buckets and batch size), the
default (``threads`` not given) and ``threads=1`` alternating over the rounds; medians of tokens/s. First checks
that the two give the same tag probabilities (fp32: bit for bit).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from lstm_onnx.runtime.tagger import TokenTagger
from lstm_onnx.runtime.tagging_data import read_tagged


def main() -> None:
    """Alternate the two loads; print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ud-ewt"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    data = read_tagged(args.data, "test")
    taggers = {
        "default": TokenTagger.load(args.bundle, providers="cpu"),
        "threads=1": TokenTagger.load(args.bundle, providers="cpu", threads=1),
    }
    probs = {name: t.predict_proba(data.tokens) for name, t in taggers.items()}
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(probs["default"], probs["threads=1"], strict=True))
    speed: dict[str, list[float]] = {name: [] for name in taggers}
    for round_ in range(args.rounds):
        for name in list(taggers)[:: 1 if round_ % 2 else -1]:
            start = time.perf_counter()
            taggers[name].tag_tokens(data.tokens)
            speed[name].append(data.num_tokens / (time.perf_counter() - start))
    medians = {name: statistics.median(v) for name, v in speed.items()}
    ratio = medians["default"] / medians["threads=1"]
    print(f"{len(data.tokens)} sentences, {data.num_tokens} tokens; max |Δprob| default vs threads=1: {max_diff:.1e}")
    print("  ".join(f"{name}: {value:,.0f} tokens/s" for name, value in medians.items()) + f"  ({ratio:.2f}x)")
    if args.json:
        result = {
            "command": shlex.join(["python", *sys.argv]),
            "sentences": len(data.tokens),
            "tokens": data.num_tokens,
            "rounds": args.rounds,
            "max_abs_prob_diff": max_diff,
            "tokens_per_s": speed,
            "median_tokens_per_s": medians,
            "default_over_threads_1": ratio,
            "load_average_after": os.getloadavg(),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
