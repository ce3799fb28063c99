"""``python -m lstm_onnx.bench.gpu_proof``: the GPU proof kit's command line (``scripts/gpu_proof.sh`` runs it).

Exit status: 0 when every stage that ran passed, 1 when one failed (the results say which and why), 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from lstm_onnx.bench.gpu_proof.config import DEVICES, ProofConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_onnx.bench.gpu_proof",
        description="Train, export, verify and time the BiLSTM classifier on a GPU (or dry-run it on the CPU).",
    )
    parser.add_argument("--device", choices=DEVICES, default="cuda", help="cuda (the proof) or cpu (the dry run)")
    parser.add_argument("--tiny", action="store_true", help="tiny preset and samples, short budgets (the dry run)")
    parser.add_argument("--data", type=Path, required=True, help="labelled IMDB reviews: aclImdb folder, .tar, .tar.gz")
    parser.add_argument("--embeddings", type=Path, help="word vectors for training (GloVe text, plain or .gz)")
    parser.add_argument("--tokenizer-rules", type=Path, help="tokenizer.json to pin in training (no spaCy needed)")
    parser.add_argument("--tag-data", type=Path, help="folder of *-train/-dev/-test CoNLL-U files (tagging stage)")
    parser.add_argument("--work-dir", type=Path, help="runs and bundles (default .device/work; replaced)")
    parser.add_argument("--results-dir", type=Path, help="results folder (default benchmarks/results)")
    parser.add_argument("--copy-to", type=Path, help="also copy the results and the commands' log here ($OUT)")
    parser.add_argument("--epochs", type=int, help="epoch cap of the classifier (default: the preset's)")
    parser.add_argument("--workers", type=int, help="tokenizer processes (default: every CPU)")
    parser.add_argument("--seed", type=int, help="sampling seed (default 0)")
    parser.add_argument("--budget-scale", type=float, help="multiply every stage's budget and the total (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run every stage, print the summary on stdout; stage progress goes to stderr."""
    from lstm_onnx.bench.gpu_proof.report import summary
    from lstm_onnx.bench.gpu_proof.run import run_proof

    args = _parser().parse_args(argv)
    given = {
        "embeddings": args.embeddings,
        "tokenizer_rules": args.tokenizer_rules,
        "tag_data": args.tag_data,
        "work_dir": args.work_dir,
        "results_dir": args.results_dir,
        "copy_to": args.copy_to,
        "epochs": args.epochs,
        "workers": args.workers,
        "seed": args.seed,
    }
    try:
        config = ProofConfig.make(args.device, args.tiny, args.data, **given)
        if args.budget_scale is not None:
            config = replace(config, budgets=config.budgets.scaled(args.budget_scale))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "lstm_onnx.bench.gpu_proof", *(sys.argv[1:] if argv is None else argv)])
    outcome = run_proof(config.with_command(command), progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(summary(outcome), end="")
    print("results: " + " ".join(path.as_posix() for path in outcome.files))
    return 0 if outcome.proof.passed else 1


if __name__ == "__main__":
    sys.exit(main())
