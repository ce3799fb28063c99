"""`lstm-onnx bench`: torch is imported only with ``--against`` (inside the benchmark's PyTorch backend)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lstm_onnx.runtime.cli import LabelFieldOpt, TextFieldOpt
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.limits import MAX_THREADS

__all__ = ["bench_command"]


class BenchFormat(str, Enum):
    """Output formats for bench."""

    TABLE = "table"
    JSON = "json"


def _int_list(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError as err:
        raise typer.BadParameter(f"expected comma-separated integers like 1,8,32, got {value!r}") from err
    if any(n < 1 for n in numbers):
        raise typer.BadParameter(f"every number must be >= 1, got {value!r}")
    return numbers


def bench_command(
    bundle: Annotated[Path, typer.Argument(help="fp32 bundle directory, or a .zip/.tar.gz of one.", exists=True)],
    against: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Training run directory: adds PyTorch eager (loads torch) and ratios.", exists=True, file_okay=False
        ),
    ] = None,
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Labelled data (IMDB dir/tarball, CSV, JSONL): real reviews and the end-to-end figure.", exists=True
        ),
    ] = None,
    text_field: TextFieldOpt = None,
    label_field: LabelFieldOpt = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,32,128",
    seq_lens: Annotated[
        str, typer.Option(help="Comma-separated fixed sequence lengths (besides real reviews).")
    ] = "16,256",
    runs: Annotated[int, typer.Option(help="Timed runs per figure (warm-ups excluded).", min=30, max=100_000)] = 30,
    torch_peers: Annotated[
        str,
        typer.Option(
            help="PyTorch CPU peers with --against: torch (packed eager), torch-masked (masked twin, eager), "
            "torch-compiled (torch.compile on the masked twin; compiles first, excluded from timing)."
        ),
    ] = "torch,torch-masked,torch-compiled",
    threads: Annotated[int, typer.Option(help="Intra-op threads for ORT and torch alike.", min=1, max=MAX_THREADS)] = 1,
    idle_ms: Annotated[float, typer.Option(help="Idle gap before each timed call, ms.", min=0.0, max=10_000.0)] = 50.0,
    optimized: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="ORT-optimized model.onnx (default: made from the bundle in a temp dir).", exists=True, dir_okay=False
        ),
    ] = None,
    int8: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="int8 model.onnx (default: made from the bundle in a temp dir).", exists=True, dir_okay=False
        ),
    ] = None,
    end_to_end: Annotated[
        bool, typer.Option("--end-to-end/--no-end-to-end", help="Time text to probabilities (needs --data).")
    ] = True,
    startup: Annotated[bool, typer.Option("--startup/--no-startup", help="Time start-up in fresh processes.")] = True,
    output_format: Annotated[
        BenchFormat, typer.Option("--format", help="table or json (a list of records).")
    ] = BenchFormat.TABLE,
) -> None:
    """Benchmark ONNX Runtime (fp32, optimized, int8; CUDA if present) against PyTorch (packed, masked, compiled)."""
    import json
    from dataclasses import replace

    from lstm_onnx.bench.report import tables
    from lstm_onnx.bench.suite import BenchConfig, bench
    from lstm_onnx.bench.torch_peers import TORCH_PEERS
    from lstm_onnx.runtime.archive import bundle_directory

    peers = tuple(part.strip() for part in torch_peers.split(",") if part.strip())
    if not peers or set(peers) - set(TORCH_PEERS):
        raise typer.BadParameter(
            f"expected some of {','.join(TORCH_PEERS)}, got {torch_peers!r}", param_hint="--torch-peers"
        )
    config = BenchConfig(
        bundle=bundle,
        against=against,
        data=data,
        text_field=text_field,
        label_field=label_field,
        batch_sizes=_int_list(batch_sizes),
        seq_lens=_int_list(seq_lens),
        runs=runs,
        torch_peers=peers,
        threads=threads,
        idle_s=idle_ms / 1e3,
        optimized=optimized,
        int8=int8,
        end_to_end=end_to_end,
        startup=startup,
    )
    err = Console(stderr=True)
    progress = (lambda message: err.print(f"[dim]{message}[/dim]")) if sys.stderr.isatty() else None
    # An archive is extracted for the whole run: start-up timing loads the bundle again in fresh processes.
    with bundle_directory(bundle) as directory:
        if _task(directory) == "tag":
            raise BundleError(
                f"{bundle} is a tagging bundle; `lstm-onnx bench` measures classifiers. Time a tagger with "
                "`python benchmarks/tagger_bench.py RUN BUNDLE` (ORT vs PyTorch, sentences/s and tokens/s)."
            )
        records = bench(replace(config, bundle=directory), progress=progress)
    if output_format is BenchFormat.JSON:
        typer.echo(json.dumps(records, indent=2))
        return
    console = Console()
    if not console.is_terminal:
        console.width = 160
    for table in tables(records):
        console.print(table)


def _task(directory: Path) -> str:
    """The bundle's task from its config.json (``classify`` when unreadable: loading then says what is wrong)."""
    try:
        config = json.loads((directory / BUNDLE_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "classify"
    return str(config.get("task", "classify")) if isinstance(config, dict) else "classify"
