"""Markdown tables from ``benchmarks/peers.py`` results: ORT fp32 and int8 as ratios to each PyTorch peer.

Usage: python benchmarks/peers_table.py RESULT.json [RESULT.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PEERS = (("torch", "packed eager"), ("torch_masked", "masked eager"), ("torch_compiled", "compiled masked"))


def table(path: Path) -> str:
    """One table per result file: a row per (threads, B, T), model-only throughput ratios."""
    result = json.loads(path.read_text(encoding="utf-8"))
    header = ["threads", "B", "T", "load avg"]
    header += [f"{ort} vs {label}" for ort in ("fp32", "int8") for _, label in PEERS]
    header += ["compiled vs packed", "fp32 texts/s", "int8 texts/s", "compiled texts/s"]
    lines = [
        f"**{result['label']}** (`{path.name}`; command: `{result['command']}`)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for threads, block in result["by_threads"].items():
        model = [r for r in block["records"] if r["kind"] == "model"]
        for key in dict.fromkeys((r["batch_size"], r["seq_len"]) for r in model):
            rows = {r["backend"]: r for r in model if (r["batch_size"], r["seq_len"]) == key}
            fp32, int8, compiled = rows["ort-cpu"], rows["ort-cpu-int8"], rows["torch-compiled"]
            cells = [threads, str(key[0]), str(key[1]), f"{block['load_average_before'][0]:.1f}"]
            cells += [f"{r[f'ratio_vs_{peer}']:.2f}" for r in (fp32, int8) for peer, _ in PEERS]
            cells += [f"{compiled['ratio_vs_torch']:.2f}"]
            cells += [f"{r['texts_per_s']:,.1f}" for r in (fp32, int8, compiled)]
            lines.append("| " + " | ".join(cells) + " |")
    e2e_rows = []
    for threads, block in result["by_threads"].items():
        ours = [r for r in block["records"] if r["kind"] == "end_to_end" and r["backend"] == "ort-cpu"]
        if ours and "ratio_vs_torch_compiled" in ours[0]:
            r = ours[0]
            ratios = " | ".join(f"{r[f'ratio_vs_{peer}']:.2f}" for peer, _ in PEERS)
            e2e_rows.append(f"| {threads} | {r['batch_size']} | {r['texts_per_s']:,.1f} | {ratios} |")
    if e2e_rows:
        lines += [
            "",
            "End to end (text → probabilities; PyTorch peers tokenize with the bundle's tokenizer, same buckets):",
            "",
            "| threads | B | ORT fp32 texts/s | vs packed eager | vs masked eager | vs compiled masked |",
            "|---|---|---|---|---|---|",
            *e2e_rows,
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print("\n".join(table(Path(p)) for p in sys.argv[1:]))
