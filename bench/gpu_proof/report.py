"""The proof's results: one JSON file with every record, a Markdown summary, both written to the results folder and
copied (with the commands' log) to a second folder when asked (the device tool's ``$OUT``: what comes back)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstm_onnx.bench.gpu_proof.run import Outcome

__all__ = ["summary", "write_results"]


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "—"


def _sci(value: Any) -> str:
    return f"{value:.1e}" if isinstance(value, (int, float)) else "—"


def _headline(stage: str, result: dict[str, Any]) -> str:
    """One line saying what a stage found."""
    if stage == "environment":
        gpu = result["machine"].get("gpu") or {}
        smi = gpu.get("nvidia_smi")
        smi = smi if isinstance(smi, dict) else {}
        where = f"{gpu['name']}, driver {smi.get('driver_version', '?')}" if gpu else "no GPU (CPU dry run)"
        return f"{where}; lstm_onnx from {result['code']['from']}"
    if stage in ("train", "tagger") and "epochs_run" in result:
        seconds = result.get("epoch_seconds") or []
        per = f"{statistics.median(seconds):.1f} s/epoch (median)" if seconds else ""
        if not per and result.get("mean_epoch_seconds_incl_setup"):
            per = f"{result['mean_epoch_seconds_incl_setup']:.1f} s/epoch incl. set-up"
        stop = ", stopped at its budget" if result.get("stopped_at_budget") else ""
        test = _pct(result["test_accuracy"])
        return f"{result['epochs_run']} epochs{stop}, {per}, best {result['best_epoch']}, test accuracy {test}"
    if stage == "export" and "export_parity" in result:
        cpu = result["export_parity"]["fp32"].get("onnxruntime-cpu", {})
        return f"fp32 + fp16 bundles; fp32 ORT CPU |Δlogit| {_sci(cpu.get('max_abs_diff'))} vs torch CPU"
    if stage == "graphs":
        lstm = result["graphs"]["fp32"]["lstm"]
        layouts = sorted({n["layout"] for n in lstm})
        lens = sorted({f"{n['sequence_lens_dtype']} ({n['sequence_lens_from']})" for n in lstm})
        return f"{len(lstm)} LSTM node(s), layout {layouts}, sequence_lens {', '.join(lens)}"
    if stage == "verify" and "parity" in result:
        parts = [f"{name}: {b.get('status')} {_sci(b.get('max_abs_diff'))}" for name, b in result["parity"].items()]
        return "; ".join(parts)
    if stage == "parity" and "backends" in result:
        worst = [f"{n} {_sci(b['max_abs_diff'])}" for n, b in result["backends"].items()]
        return (
            f"vs {result['reference']['backend']}, {result['cases_run']}/{result['cases_total']} cases: "
            + ", ".join(worst)
        )
    if stage == "speed" and result.get("records"):
        ort = [r for r in result["records"] if r["backend"].startswith("ort") and not r["backend"].endswith("fp16")]
        return ", ".join(
            f"B={r['batch_size']} ORT {r['ratio_vs_torch_eager']:.2f}x eager"
            for r in ort
            if r.get("ratio_vs_torch_eager")
        )
    if stage == "end_to_end" and "parallel" in result:
        return (
            f"{result['serial']['reviews_per_s']:.0f} reviews/s on one core, "
            f"{result['parallel']['reviews_per_s']:.0f} with {result['workers']} tokenizer processes"
        )
    return ""


def summary(outcome: Outcome) -> str:
    """The Markdown summary: the headline per stage, then parity, speed and end-to-end tables."""
    config, proof = outcome.config, outcome.proof
    machine = outcome.machine
    versions = machine.get("versions", {})
    gpu = machine.get("gpu") or {}
    if gpu:
        title = str(gpu.get("name"))
    elif config.device == "cuda":
        title = "no GPU found (--device cuda)"
    else:
        title = f"CPU dry run (--device cpu{' --tiny' if config.tiny else ''})"
    lines = [
        f"# GPU proof: {title} — {'passed' if proof.passed else 'FAILED'}",
        "",
        ", ".join(f"{k} {v}" for k, v in versions.items())
        + (f"; CUDA {gpu.get('torch_cuda')}, cuDNN {gpu.get('cudnn')}" if gpu else ""),
        f"Settings: {machine.get('settings', {})}; PyTorch TF32 off for parity and timing.",
        f"Command: `{config.command}`",
        "",
        "| stage | status | seconds (budget) | result |",
        "| --- | --- | --- | --- |",
    ]
    for record in proof.records:
        text = record.reason if record.status != "passed" else _headline(record.stage, record.result)
        lines.append(f"| {record.stage} | {record.status} | {record.seconds:.1f} ({record.budget_s:.0f}) | {text} |")
    results = {r.stage: r.result for r in proof.records if r.status != "skipped"}
    if "backends" in results.get("parity", {}):
        parity = results["parity"]
        lines += [
            "",
            f"## Parity against {parity['reference']['backend']} ({parity['reviews']} reviews + generated cases)",
            "",
        ]
        lines += [
            "| backend | max abs Δlogit | max abs Δprob | labels agree | accuracy (torch) | alone vs batch | status |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, b in parity["backends"].items():
            lines.append(
                f"| {name} | {_sci(b['max_abs_diff'])} | {_sci(b['max_prob_diff'])} | {_pct(b['label_agreement'])} | "
                f"{_pct(b['accuracy'])} ({_pct(b['torch_accuracy'])}) | {_sci(b['invariance_diff'])} | {b['status']} |"
            )
    if results.get("speed", {}).get("records"):
        lines += ["", "## Speed on real reviews (host arrays in, host logits out; interleaved)", ""]
        lines += [
            "| B | backend | texts/s | p50 ms | p99 ms | × torch eager | × torch compiled |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in results["speed"]["records"]:
            ratios = [f"{r[k]:.2f}" if r.get(k) else "—" for k in ("ratio_vs_torch_eager", "ratio_vs_torch_compiled")]
            rate = f"{r['texts_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f}"
            lines.append(f"| {r['batch_size']} | {r['backend']} | {rate} | {ratios[0]} | {ratios[1]} |")
    if "parallel" in results.get("end_to_end", {}):
        e2e = results["end_to_end"]
        lines += [
            "",
            f"## End to end ({e2e['reviews']} reviews, batches of {e2e['batch_size']}, "
            f"at most {e2e['max_batch_tokens']} padded tokens)",
            "",
        ]
        for key in ("serial", "parallel", "tokenize_parallel", "model_only"):
            lines.append(f"- {key}: {e2e[key]['reviews_per_s']:.0f} reviews/s ({e2e[key]['seconds']:.2f} s)")
    return "\n".join(lines) + "\n"


def write_results(outcome: Outcome, log: Path) -> list[Path]:
    """Write ``gpu-proof-<device>[-tiny]-<UTC time>.json`` and ``.md`` into the results folder, and copy them and
    the commands' log into ``config.copy_to`` when given.

    Returns:
        Every file written.
    """
    config = outcome.config
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"gpu-proof-{config.device}{'-tiny' if config.tiny else ''}-{stamp}"
    config.results_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "kind": "gpu-proof",
        "created_utc": stamp,
        "passed": outcome.proof.passed,
        "command": config.command,
        "config": config.to_dict(),
        "machine": outcome.machine,
        "stages": [r.to_dict() for r in outcome.proof.records],
    }
    files = [config.results_dir / f"{stem}.json", config.results_dir / f"{stem}.md"]
    files[0].write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    files[1].write_text(summary(outcome), encoding="utf-8")
    if config.copy_to is not None:
        config.copy_to.mkdir(parents=True, exist_ok=True)
        copies = [shutil.copy(path, config.copy_to / path.name) for path in files]
        if log.is_file():
            copies.append(shutil.copy(log, config.copy_to / f"{stem}-commands.log"))
        files += [Path(c) for c in copies]
    return files
