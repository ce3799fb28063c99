"""Measure the speed levers one at a time against the runtime's default session, interleaved (30 runs each).

Usage: python benchmarks/levers.py [--work DIR] [--data PATH] [--json OUT]

Levers: ORT intra-op threads (1 vs 2) with spinning on/off, graph optimization level, denormals as zero,
parallel execution mode, int8 quantization options (per-channel, reduce_range, LSTM-only), the effect of
``sequence_lens`` (padded steps skipped?), and sorting real reviews by length before batching (less padding).
Sessions for options SessionConfig does not expose are built here from its SessionOptions (an experiment,
not a serving path). Prints one JSON object: {lever: {variant: p50 ms or texts/s}}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_model import make_bench_bundles  # noqa: E402

from lstm_onnx.bench.cases import bucket_encode, encode_texts  # noqa: E402
from lstm_onnx.bench.timing import interleave, summarize  # noqa: E402
from lstm_onnx.runtime.bundle import load_bundle  # noqa: E402
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample  # noqa: E402
from lstm_onnx.runtime.session import SessionConfig  # noqa: E402
from lstm_onnx.runtime.tokenizer import batch_encode  # noqa: E402

RUNS = 30
REVIEWS = 64  # 2 batches of 32 per repetition: the whole lever run stays within minutes
Feeds = dict[str, Any]


def _session(model: Path, config: SessionConfig, **entries: str) -> ort.InferenceSession:
    options = config.session_options()
    for key, value in entries.items():
        if key == "execution_mode":
            options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        else:
            options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _p50(sessions: dict[str, ort.InferenceSession], feeds: list[Feeds]) -> dict[str, float]:
    def call(session: ort.InferenceSession) -> Any:
        return lambda rep: [session.run(None, f) for f in feeds]

    samples = interleave({k: call(s) for k, s in sessions.items()}, runs=RUNS, idle_s=0.05)
    return {k: round(summarize(v).p50_ms, 3) for k, v in samples.items()}


def _fixed(batch: int, length: int, real: int | None = None) -> Feeds:
    ids = np.random.default_rng(0).integers(2, 20_000, (batch, length), dtype=np.int64)
    return {"input_ids": ids, "lengths": np.full(batch, real or length, dtype=np.int64)}


def _int8_variants(fp32: Path, work: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)
    ops = ["LSTM", "MatMul", "Gemm", "Gather"]
    options: dict[str, dict[str, Any]] = {
        "exporter default": {},
        "per_channel": {"per_channel": True},
        "reduce_range": {"reduce_range": True},
        "LSTM only": {"op_types_to_quantize": ["LSTM"]},
    }
    out = {}
    for name, extra in options.items():
        path = work / f"int8-{name.replace(' ', '_')}.onnx"
        if not path.is_file():
            quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, **{"op_types_to_quantize": ops, **extra})
        out[name] = path
    return out


def main() -> None:
    """Run every lever and print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstm-onnx-bench"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz")
    parser.add_argument("--json", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    _, bundles = make_bench_bundles(args.data, args.work)
    fp32 = bundles["fp32"] / "model.onnx"
    one = SessionConfig(providers="cpu", intra_op_threads=1)
    two = SessionConfig(providers="cpu", intra_op_threads=2)
    short, mid = [_fixed(1, 16)], [_fixed(8, 128)]
    result: dict[str, Any] = {"shapes": {"short": "B=1 T=16", "mid": "B=8 T=128"}}
    sessions = {
        "1 thread, spin off (default)": _session(fp32, one),
        "1 thread, spin on": _session(fp32, SessionConfig(providers="cpu", intra_op_threads=1, allow_spinning=True)),
        "2 threads, spin off": _session(fp32, two),
        "2 threads, spin on": _session(fp32, SessionConfig(providers="cpu", intra_op_threads=2, allow_spinning=True)),
    }
    result["threads_spinning_mid_p50_ms"] = _p50(sessions, mid)
    result["threads_spinning_short_p50_ms"] = _p50(sessions, short)
    sessions = {
        level: _session(fp32, SessionConfig(providers="cpu", intra_op_threads=1, graph_optimization=level))
        for level in ("disable", "basic", "extended", "all")
    }
    sessions["all + denormal_as_zero"] = _session(fp32, one, **{"session.set_denormal_as_zero": "1"})
    sessions["all + parallel execution mode"] = _session(fp32, one, execution_mode="parallel")
    result["session_options_mid_p50_ms"] = _p50(sessions, mid)
    int8 = {k: _session(p, one) for k, p in _int8_variants(fp32, args.work).items()}
    result["int8_options_mid_p50_ms"] = _p50(int8, mid)
    fp = {"fp32": _session(fp32, one)}
    result["sequence_lens_B8_T128_p50_ms"] = {
        f"lengths {real}/128": _p50(fp, [_fixed(8, 128, real)])["fp32"] for real in (128, 64, 16)
    }
    bundle = load_bundle(bundles["fp32"], one)
    texts = stratified_sample(read_dataset(args.data, split="test"), REVIEWS, 0).texts
    ids = encode_texts(texts, bundle.tokenizer, bundle.vocab)
    batchings = {
        "input order": [batch_encode(ids[i : i + 32]) for i in range(0, len(ids), 32)],
        "sorted by length": bucket_encode(ids, 32),
    }
    result[f"bucketing_{REVIEWS}_reviews_B32"] = {}
    for name, batches in batchings.items():
        feeds = [{"input_ids": i, "lengths": n} for i, n in batches]
        padded = sum(i.size for i, _ in batches) / sum(int(n.sum()) for _, n in batches)
        p50 = _p50(fp, feeds)["fp32"]
        result[f"bucketing_{REVIEWS}_reviews_B32"][name] = {
            "p50_ms_all": p50,
            "texts_per_s": REVIEWS / p50 * 1e3,
            "padded_over_real": padded,
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
