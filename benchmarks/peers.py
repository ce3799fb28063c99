"""ORT against its strongest PyTorch peers: packed eager, the masked twin eager, torch.compile on the masked twin.

Usage: python benchmarks/peers.py [--data PATH] [--work DIR] [--run RUN_DIR --bundle BUNDLE_DIR] [--threads 1,2]

Without ``--run``/``--bundle`` it builds (once, reused from --work) the tutorials' 2x256 BiLSTM with embedding 100
(benchmarks/bench_model.py, random weights); with them it benches a trained run and its exported bundle (e.g. the
cpu preset). For each thread count, ``lstm_onnx.bench.bench`` times every backend interleaved on batch 1/8/32 of
real IMDB test reviews and on 16-token texts, end to end included. Writes
``benchmarks/results/<UTC time>-peers-<label>.json`` (command, load averages, records per thread count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_model import make_bench_bundles  # noqa: E402

from lstm_onnx.bench import BenchConfig, bench  # noqa: E402
from lstm_onnx.exporter.variants import Variant, make_variant  # noqa: E402

# Relative to where the script runs (../shared/... from the repository root): records name the data portably.
DEFAULT_DATA = Path(os.path.relpath(REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"))


def main() -> None:
    """Parse arguments, bench each thread count, write one JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IMDB tarball or directory.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstm-onnx-peers"), help="Built model and variants.")
    parser.add_argument("--run", type=Path, help="Trained run directory (with --bundle).")
    parser.add_argument("--bundle", type=Path, help="Its fp32 bundle (with --run).")
    parser.add_argument("--label", default="2x256-e100", help="Name in the output file.")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--seq-lens", default="16")
    parser.add_argument("--threads", default="1,2", help="Comma-separated thread counts, one full run each.")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    started = time.time()
    load_before = os.getloadavg()
    if args.run is None:
        run_dir, bundles = make_bench_bundles(args.data, args.work, embedding_dim=100)
        fp32, optimized, int8 = bundles["fp32"], bundles["optimized"] / "model.onnx", bundles["int8"] / "model.onnx"
    else:
        run_dir, fp32 = args.run, args.bundle
        args.work.mkdir(parents=True, exist_ok=True)
        optimized, int8 = (args.work / f"{args.label}-{v.value}.onnx" for v in (Variant.OPTIMIZED, Variant.INT8))
        for variant, path in ((Variant.OPTIMIZED, optimized), (Variant.INT8, int8)):
            if not path.is_file():
                make_variant(variant, fp32 / "model.onnx", path)
    by_threads: dict[str, Any] = {}
    for threads in (int(t) for t in args.threads.split(",")):
        config = BenchConfig(
            bundle=fp32,
            against=run_dir,
            data=args.data,
            batch_sizes=tuple(int(x) for x in args.batch_sizes.split(",")),
            seq_lens=tuple(int(x) for x in args.seq_lens.split(",")),
            runs=args.runs,
            threads=threads,
            optimized=optimized,
            int8=int8,
            end_to_end_batch=16,
            startup=False,
        )

        def say(message: str, threads: int = threads) -> None:
            print(f"[{time.time() - started:6.0f} s, {threads} thread(s)] {message}", file=sys.stderr)

        by_threads[str(threads)] = {"load_average_before": os.getloadavg(), "records": bench(config, progress=say)}
        by_threads[str(threads)]["load_average_after"] = os.getloadavg()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "created_at": stamp,
        "command": shlex.join(["python", *sys.argv]),
        "label": args.label,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "seconds": time.time() - started,
        "by_threads": by_threads,
    }
    out = REPO / "benchmarks" / "results" / f"{stamp}-peers-{args.label}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(out)


if __name__ == "__main__":
    main()
