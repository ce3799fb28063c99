"""Tagger throughput: ORT CPU (fp32, int8) vs PyTorch eager on real EWT test sentences, 1 thread, interleaved.

Usage: python benchmarks/tagger_bench.py RUN_DIR BUNDLE [--int8 BUNDLE_INT8] [--data ud-ewt] [--repeats 15]

Model-only: the same pre-encoded batches (sorted by length, batch 32, and one sentence at a time) go to each
backend in turn, round after round, so load changes hit every backend alike; medians over rounds are reported.
End to end: ``TokenTagger.tag_tokens`` on the gold tokens (encoding, batching, softmax included) and
``TokenTagger.tag`` on the raw sentence texts (tokenizer included), tokens/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from lstm_onnx.runtime.contract import CHAR_IDS, INPUT_IDS, LENGTHS, LOGITS
from lstm_onnx.runtime.tagger import TokenTagger
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.runtime.tagging_encode import encode
from lstm_onnx.trainer.tag_run import load_tag_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--int8", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ud-ewt"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--single", type=int, default=300, help="sentences timed one at a time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_tag_run(args.run_dir)
    data = read_tagged(args.data, "test")
    sentences = sorted(data.tokens, key=len)
    width = run.model_config.max_word_chars
    batches = [encode(sentences[i : i + 32], run.vocab, run.chars, width) for i in range(0, len(sentences), 32)]
    rng = np.random.default_rng(0)
    picks = rng.choice(len(data.tokens), size=args.single, replace=False)
    singles = [encode([data.tokens[i]], run.vocab, run.chars, width) for i in picks]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    backends = {
        "onnxruntime fp32": ort.InferenceSession(
            str(args.bundle / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
    }
    if args.int8:
        backends["onnxruntime int8"] = ort.InferenceSession(
            str(args.int8 / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def run_torch(enc) -> None:  # type: ignore[no-untyped-def]
        with torch.no_grad():
            run.model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.char_ids), torch.from_numpy(enc.lengths))

    def runner(session):  # type: ignore[no-untyped-def]
        return lambda enc: session.run(
            [LOGITS], {INPUT_IDS: enc.input_ids, CHAR_IDS: enc.char_ids, LENGTHS: enc.lengths}
        )

    fns = {"pytorch eager": run_torch, **{k: runner(s) for k, s in backends.items()}}
    results: dict[str, dict[str, list[float]]] = {k: {"batch32": [], "single": []} for k in fns}
    for fn in fns.values():  # warm-up
        fn(batches[0]), fn(singles[0])
    for _ in range(args.repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for enc in batches:
                fn(enc)
            results[name]["batch32"].append(len(sentences) / (time.perf_counter() - start))
            start = time.perf_counter()
            for enc in singles:
                fn(enc)
            results[name]["single"].append(len(singles) / (time.perf_counter() - start))
    tagger = TokenTagger.load(args.bundle, providers="cpu", threads=1, batch_size=32)
    texts = [" ".join(s) for s in data.tokens]
    e2e: dict[str, list[float]] = {"tag_tokens": [], "tag": []}
    for _ in range(3):
        start = time.perf_counter()
        tagger.tag_tokens(data.tokens)
        e2e["tag_tokens"].append(data.num_tokens / (time.perf_counter() - start))
        start = time.perf_counter()
        tagged = tagger.tag(texts)
        e2e["tag"].append(sum(len(t.tokens) for t in tagged) / (time.perf_counter() - start))
    base = {k: statistics.median(results["pytorch eager"][k]) for k in ("batch32", "single")}
    report = {
        "sentences": len(sentences),
        "tokens": data.num_tokens,
        "repeats": args.repeats,
        "threads": 1,
        "sentences_per_s": {n: {k: round(statistics.median(v), 1) for k, v in r.items()} for n, r in results.items()},
        "ratio_vs_torch": {
            n: {k: round(statistics.median(v) / base[k], 2) for k, v in r.items()} for n, r in results.items()
        },
        "end_to_end_tokens_per_s": {k: round(statistics.median(v)) for k, v in e2e.items()},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
