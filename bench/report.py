"""Render benchmark records: rich tables for the terminal, a Markdown table for benchmarks/README.md.

Pure functions from records to tables or text; the caller prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

__all__ = ["markdown", "tables"]

_MODEL_COLUMNS = (
    ("backend", "backend", "{}"),
    ("B", "batch_size", "{}"),
    ("T", "seq_len", "{}"),
    ("texts/s", "texts_per_s", "{:,.1f}"),
    ("tokens/s", "tokens_per_s", "{:,.0f}"),
    ("mean ms", "mean_ms", "{:.2f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p90 ms", "p90_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("GFLOP/s", "gflops", "{:.1f}"),
)
# Throughput ratios against each PyTorch peer (packed eager, masked twin eager, compiled masked twin).
_RATIO_COLUMNS = (
    ("× torch", "ratio_vs_torch", "{:.2f}"),
    ("× masked", "ratio_vs_torch_masked", "{:.2f}"),
    ("× compiled", "ratio_vs_torch_compiled", "{:.2f}"),
)


def _cell(record: dict[str, Any], key: str, fmt: str) -> str:
    value = record.get(key)
    return "" if value is None else fmt.format(value)


def _of(records: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == kind]


def _rows(records: Sequence[dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Section title → (header, rows) for every kind of record present."""
    sections: dict[str, tuple[list[str], list[list[str]]]] = {}
    model = _of(records, "model")
    if model:
        sections["Model only (texts/s and tokens/s: throughput; ms: latency per batch call)"] = (
            [c[0] for c in (*_MODEL_COLUMNS, *_RATIO_COLUMNS)],
            [[_cell(r, key, fmt) for _, key, fmt in (*_MODEL_COLUMNS, *_RATIO_COLUMNS)] for r in model],
        )
    e2e = _of(records, "end_to_end")
    if e2e:
        sections["End to end (text → probabilities through TextClassifier)"] = (
            [
                "backend",
                "B",
                "texts/s",
                "model-only texts/s",
                "e2e / model",
                "tokenize",
                "batching",
                "inference",
                *(label for label, _, _ in _RATIO_COLUMNS),
            ],
            [
                [
                    r["backend"],
                    str(r["batch_size"]),
                    f"{r['texts_per_s']:,.1f}",
                    _cell(r, "model_texts_per_s", "{:,.1f}"),
                    _cell(r, "e2e_vs_model", "{:.1%}"),
                    _cell(r, "share_tokenize", "{:.1%}"),
                    _cell(r, "share_batching", "{:.1%}"),
                    _cell(r, "share_inference", "{:.1%}"),
                    *(_cell(r, key, fmt) for _, key, fmt in _RATIO_COLUMNS),
                ]
                for r in e2e
            ],
        )
    startup = _of(records, "startup")
    if startup:
        sections["Start-up (fresh process: import, load, predict one text)"] = (
            ["backend", "wall p50 ms", "wall p90 ms", "in-process p50 ms", "peak RSS MiB (p50)", "torch importable"],
            [
                [
                    r["backend"],
                    f"{r['wall_p50_ms']:.0f}",
                    f"{r['wall_p90_ms']:.0f}",
                    f"{r['in_process_p50_ms']:.0f}",
                    f"{r['peak_rss_mb_p50']:.0f}",
                    "no (blocked)" if r["torch_blocked"] else "yes",
                ]
                for r in startup
            ],
        )
    ceiling = _of(records, "ceiling")
    if ceiling:
        sections["Ceiling (numpy float32 matmul, same threads)"] = (
            ["shape (M, K, N)", "threads", "median ms", "GFLOP/s"],
            [
                [str(tuple(r["shape"])), str(r["threads"]), f"{r['seconds'] * 1e3:.2f}", f"{r['gflops']:.1f}"]
                for r in ceiling
            ],
        )
    skipped = _of(records, "skipped")
    if skipped:
        sections["Skipped"] = (["backend", "reason"], [[r["backend"], r["reason"]] for r in skipped])
    return sections


def _caption(records: Sequence[dict[str, Any]]) -> str:
    env = _of(records, "environment")
    if not env:
        return ""
    e = env[0]
    versions = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
    providers = ", ".join(
        sorted({f"{r['backend']}: {r['provider']} ({r['threads']} thread(s))" for r in _of(records, "model")})
    )
    return (
        f"{versions}. Providers: {providers}. {e['method']}. "
        f"FLOPs/token {e['flops_per_token']:,} ({e['flops_formula']})."
    )


def tables(records: Sequence[dict[str, Any]]) -> list[Table]:
    """One rich table per section; the first carries versions and method in its caption."""
    out = []
    for i, (title, (header, rows)) in enumerate(_rows(records).items()):
        table = Table(title=title, caption=_caption(records) if i == 0 else None)
        for name in header:
            table.add_column(name, justify="left" if name in ("backend", "reason") else "right")
        for row in rows:
            table.add_row(*row)
        out.append(table)
    return out


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """All sections as Markdown tables, each under a ``###`` heading, then versions and method."""
    parts = []
    for title, (header, rows) in _rows(records).items():
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("\n".join(lines))
    caption = _caption(records)
    if caption:
        parts.append(caption)
    return "\n\n".join(parts) + "\n"
