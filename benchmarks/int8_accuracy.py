"""Accuracy of the fp32 and int8 bundles of one model on the same real IMDB test reviews, through the runtime.

Usage: python benchmarks/int8_accuracy.py FP32_BUNDLE INT8_BUNDLE [--data PATH] [--n 5000] [--json OUT]

Both bundles score the same seeded, label-stratified sample with ``TextClassifier`` (the runtime's own batching,
1 thread); reports each accuracy, the difference in points, how often the two agree on the label, and the largest
probability difference.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample
from lstm_onnx.runtime.predictor import TextClassifier

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"


def main() -> None:
    """Score both bundles, print (and optionally write) the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32", type=Path)
    parser.add_argument("int8", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    sample = stratified_sample(read_dataset(args.data, split="test"), args.n, args.seed)
    probs, accuracy = {}, {}
    for name, path in (("fp32", args.fp32), ("int8", args.int8)):
        model = TextClassifier(load_bundle(path), truncate=True)
        probs[name] = model.predict_proba(sample.texts)
        predicted = [model.labels[i] for i in probs[name].argmax(axis=1)]
        accuracy[name] = float(np.mean([p == y for p, y in zip(predicted, sample.labels, strict=True)]))
    result = {
        "command": shlex.join(["python", *sys.argv]),
        "reviews": len(sample.texts),
        "accuracy_fp32": accuracy["fp32"],
        "accuracy_int8": accuracy["int8"],
        "difference_points": 100 * (accuracy["int8"] - accuracy["fp32"]),
        "label_agreement": float(np.mean(probs["fp32"].argmax(1) == probs["int8"].argmax(1))),
        "max_abs_prob_diff": float(np.abs(probs["fp32"] - probs["int8"]).max()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
