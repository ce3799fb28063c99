"""`lstm-onnx export` and `verify`: torch is imported inside the commands only."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lstm_onnx.runtime.cli import LabelFieldOpt, TextFieldOpt
from lstm_onnx.runtime.limits import MAX_THREADS

if TYPE_CHECKING:
    from lstm_onnx.exporter.verify import ParityReport

__all__ = ["export_command", "verify_command"]


class Quantization(str, Enum):
    """Quantization schemes for --quantize."""

    INT8 = "int8"


def _progress() -> object | None:
    """A stderr progress callback when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    console = Console(stderr=True)

    def report(backend: str, done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            console.print(f"[dim]{backend}: {done}/{total} cases[/dim]", end="\r")

    return report


def _render(title: str, report: ParityReport) -> None:
    table = Table(title=title)
    for column in ("backend", "status", "cases", "texts", "max |Δlogit|", "max rel", "max |Δprob|", "labels agree"):
        table.add_column(column)
    for name, b in report.backends.items():
        if b.status in ("skipped", "not verifiable"):
            table.add_row(name, b.reason, "", "", "", "", "", "")
            continue
        table.add_row(
            name,
            b.status,
            str(b.cases),
            str(b.texts),
            f"{b.max_abs_diff:.2e}",
            f"{b.max_rel_diff:.2e}",
            f"{b.max_prob_diff:.2e}",
            f"{b.label_agreement:.4f}",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 160  # piped results must not be cut to a default 80 columns
    console.print(table)
    cpu = report.backends.get("onnxruntime-cpu")
    if cpu is not None and cpu.accuracy is not None:
        console.print(
            f"accuracy on {cpu.labelled_texts} labelled texts: onnx {cpu.accuracy:.4f}, torch {cpu.torch_accuracy:.4f} "
            f"(Δ {cpu.accuracy_delta_points:+.2f} points)"
        )


def export_command(
    run_dir: Annotated[
        Path, typer.Argument(help="Training run directory.", exists=True, file_okay=False, dir_okay=True)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Bundle directory to write (fp32). Variants go beside it as OUT-optimized, OUT-int8, OUT-fp16.",
        ),
    ],
    opset: Annotated[int, typer.Option(help="ONNX opset.", min=14, max=23)] = 17,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace existing bundles.")] = False,
    optimize: Annotated[
        bool, typer.Option("--optimize/--no-optimize", help="Also write an ORT offline-optimized bundle.")
    ] = False,
    quantize: Annotated[
        Optional[Quantization],  # noqa: UP045 - typer needs Optional for an optional Enum option
        typer.Option(help="Also write a dynamically quantized bundle (ORT CPU)."),
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16/--no-fp16", help="Also write an fp16 bundle (float32 IO).")] = False,
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Labelled data (IMDB dir/tarball, CSV, JSONL): parity on its test texts, and accuracy."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Use at most this many texts of --data (stratified).", min=1),
    ] = None,
    text_field: TextFieldOpt = None,
    label_field: LabelFieldOpt = None,
    version: Annotated[str, typer.Option(help="Semantic version written to the manifest.")] = "0.1.0",
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads for verification.", min=1, max=MAX_THREADS)] = 1,
) -> None:
    """Export a training run to a verified ONNX model bundle (and optional optimized/int8/fp16 bundles)."""
    from lstm_onnx.exporter.build import export_bundles
    from lstm_onnx.exporter.config import ExportConfig
    from lstm_onnx.exporter.variants import Variant

    variants = []
    if optimize:
        variants.append(Variant.OPTIMIZED)
    if quantize is Quantization.INT8:
        variants.append(Variant.INT8)
    if fp16:
        variants.append(Variant.FP16)
    config = ExportConfig(
        run_dir=run_dir,
        out=out,
        opset=opset,
        variants=tuple(variants),
        force=force,
        data=data,
        limit=limit,
        text_field=text_field,
        label_field=label_field,
        threads=threads,
        version=version,
    )
    from lstm_onnx.trainer.tag_run import run_task

    if run_task(run_dir) == "tag":
        from lstm_onnx.exporter.tagger_bundle import export_tagger_bundles

        for tagged in export_tagger_bundles(config):
            typer.echo(f"{tagged.variant.value} bundle: {tagged.path} " + json.dumps(tagged.parity.summary()))
        return
    for built in export_bundles(config, progress=_progress()):  # type: ignore[arg-type]
        _render(f"{built.variant.value} bundle: {built.path}", built.report)


def verify_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, or a .zip/.tar.gz of one.", exists=True)],
    against: Annotated[
        Path,
        typer.Option(help="The training run directory it was exported from.", exists=True, file_okay=False),
    ],
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Labelled data (IMDB dir/tarball, CSV, JSONL): parity on its test texts, and accuracy."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Use at most this many texts of --data (stratified).", min=1),
    ] = None,
    text_field: TextFieldOpt = None,
    label_field: LabelFieldOpt = None,
    report: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write the full per-case JSON report here (also when parity fails)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads.", min=1, max=MAX_THREADS)] = 1,
) -> None:
    """Check a bundle computes what the PyTorch run computes; exit 1 on any parity failure."""
    from lstm_onnx.exporter.build import verify_bundle
    from lstm_onnx.runtime.archive import bundle_directory
    from lstm_onnx.trainer.tag_run import run_task

    if run_task(against) == "tag":
        from lstm_onnx.exporter.tagger_verify import verify_tag_bundle

        with bundle_directory(bundle) as directory:
            tagged = verify_tag_bundle(directory, against, data=data, limit=limit, report_path=report, threads=threads)
        typer.echo(json.dumps({"bundle": str(bundle), **tagged.summary()}, indent=2))
        return
    with bundle_directory(bundle) as directory:
        result = verify_bundle(
            directory,
            against,
            data=data,
            limit=limit,
            text_field=text_field,
            label_field=label_field,
            report_path=report,
            threads=threads,
            progress=_progress(),  # type: ignore[arg-type]
        )
    _render(f"parity: {bundle}", result)
