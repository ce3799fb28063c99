"""Record a full benchmark run: build the tutorial-size model, bench every backend, write JSON and the table.

Usage: python benchmarks/run_all.py [--data PATH] [--work DIR] [--batch-sizes 1,8,32,64] [--runs 30]

Builds (once, reused from --work) the 2-layer, 256-hidden BiLSTM of the tutorials with random weights and a
vocabulary from IMDB (benchmarks/bench_model.py), exports it with its optimized and int8 variants, then runs
``lstm_onnx.bench.bench`` against the PyTorch run. Writes ``benchmarks/results/<UTC time>.json`` (machine,
versions, settings, command, load average, records) and rewrites the results section of benchmarks/README.md.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_model import make_bench_bundles  # noqa: E402

from lstm_onnx.bench import BenchConfig, bench  # noqa: E402
from lstm_onnx.bench.report import markdown  # noqa: E402

# Relative to where the script runs (../shared/... from the repository root): records name the data portably.
DEFAULT_DATA = Path(os.path.relpath(REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"))
README = REPO / "benchmarks" / "README.md"
RESULTS_MARK = "<!-- results: written by benchmarks/run_all.py -->"


def main() -> None:
    """Parse arguments, build the model, bench, write results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IMDB tarball or directory.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstm-onnx-bench"), help="Model and bundles.")
    parser.add_argument("--batch-sizes", default="1,8,32,64", help="Comma-separated batch sizes.")
    parser.add_argument("--seq-lens", default="16,256", help="Comma-separated fixed lengths.")
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per figure (>= 30).")
    parser.add_argument("--threads", type=int, default=1, help="Intra-op threads, ORT and torch alike.")
    parser.add_argument("--no-readme", action="store_true", help="Do not rewrite benchmarks/README.md.")
    args = parser.parse_args()

    started = time.time()
    load_before = os.getloadavg()
    run_dir, bundles = make_bench_bundles(args.data, args.work)
    config = BenchConfig(
        bundle=bundles["fp32"],
        against=run_dir,
        data=args.data,
        batch_sizes=tuple(int(x) for x in args.batch_sizes.split(",")),
        seq_lens=tuple(int(x) for x in args.seq_lens.split(",")),
        runs=args.runs,
        threads=args.threads,
        optimized=bundles["optimized"] / "model.onnx",
        int8=bundles["int8"] / "model.onnx",
        end_to_end_batch=16,
    )
    records = bench(
        config, progress=lambda message: print(f"[{time.time() - started:6.0f} s] {message}", file=sys.stderr)
    )
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "created_at": stamp,
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "equivalent_cli": shlex.join(
            [
                "lstm-onnx",
                "bench",
                str(config.bundle),
                "--against",
                str(run_dir),
                "--data",
                str(args.data),
                "--batch-sizes",
                args.batch_sizes,
                "--seq-lens",
                args.seq_lens,
                "--runs",
                str(args.runs),
                "--threads",
                str(args.threads),
                "--optimized",
                str(config.optimized),
                "--int8",
                str(config.int8),
            ]
        ),
        "model": "BiLSTM 2 layers x 256 hidden, embedding 50, random init (benchmarks/bench_model.py)",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "seconds": time.time() - started,
        "records": records,
    }
    out = REPO / "benchmarks" / "results" / f"{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(out)
    if not args.no_readme:
        text = README.read_text(encoding="utf-8")
        head = text.split(RESULTS_MARK)[0]
        summary = (
            f"Recorded {stamp} in `benchmarks/results/{out.name}` ({result['seconds']:.0f} s; load average "
            f"{load_before[0]:.2f} before, {result['load_average_after'][0]:.2f} after).\n\n"
            f"Command: `{result['command']}`\n"
        )
        README.write_text(f"{head}{RESULTS_MARK}\n\n{summary}\n{markdown(records)}", encoding="utf-8")


if __name__ == "__main__":
    main()
