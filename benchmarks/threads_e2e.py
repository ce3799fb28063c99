"""End to end, the runtime's default threading (batches cut into 2 concurrent 1-thread parts) against threads=1.

Usage (from the repository root): python benchmarks/threads_e2e.py BUNDLE [BUNDLE ...]

500 IMDB test reviews through ``predict`` (the predictor's own buckets and 2,048-token cap), and 200 short texts one
call each; the two loads alternate over 5 rounds; medians. Also checks that the default changes no probability
(fp32: bit-identical) and that a review alone scores as it does in its batch.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import lstm_onnx
from lstm_onnx.runtime.datasets import read_dataset

texts = read_dataset("../shared/data/imdb/aclImdb_v1.tar.gz", split="test").texts[::50][:500]
short = [t[:80] for t in texts[:200]]
for bundle in sys.argv[1:]:
    new = lstm_onnx.load(bundle, providers="cpu")  # default: batches of 2+ rows and 512+ padded tokens in 2 parts
    old = lstm_onnx.load(bundle, providers="cpu", threads=1)
    pa = np.array([p.probabilities["pos"] for p in new.predict(texts)])
    pb = np.array([p.probabilities["pos"] for p in old.predict(texts)])
    alone = np.array([new.predict([t])[0].probabilities["pos"] for t in texts[:40]])
    print(bundle, "max |new-old|", np.abs(pa - pb).max(), "max |alone-batched|", np.abs(alone - pa[:40]).max())
    res = {"new": [], "old": []}
    res1 = {"new": [], "old": []}
    for r in range(5):
        for name, m in (("new", new), ("old", old)) if r % 2 else (("old", old), ("new", new)):
            t = time.perf_counter()
            m.predict(texts)
            res[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            [m.predict([s]) for s in short]
            res1[name].append(time.perf_counter() - t)
    o, n = statistics.median(res["old"]), statistics.median(res["new"])
    o1, n1 = statistics.median(res1["old"]), statistics.median(res1["new"])
    print(
        f"  500 reviews: threads=1 {len(texts) / o:.0f} texts/s, "
        f"new default {len(texts) / n:.0f} texts/s ({o / n:.2f}x); "
        f"200 single short texts one by one: {len(short) / o1:.0f} vs {len(short) / n1:.0f} texts/s ({o1 / n1:.2f}x)",
        flush=True,
    )
