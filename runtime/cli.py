"""`lstm-onnx predict`, `evaluate` and `info`: parse, call one runtime function, render. Never imports torch or spaCy.

stdout carries results only; progress (when stderr is a terminal), warnings and errors go to stderr.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from lstm_onnx.runtime.errors import DataError, InputError
from lstm_onnx.runtime.records import json_line, prediction_record
from lstm_onnx.runtime.scale_cli import Engine, WorkersOpt, run_score

__all__ = ["evaluate_command", "info_command", "predict_command"]

_BUNDLE_HELP = "Bundle directory written by `lstm-onnx export`."


class PredictFormat(str, Enum):
    """Output formats of `predict`."""

    JSONL = "jsonl"
    TABLE = "table"
    CSV = "csv"


class ReportFormat(str, Enum):
    """Output formats of `evaluate` and `info`."""

    JSON = "json"
    TABLE = "table"


class Provider(str, Enum):
    """Execution provider choices."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


BundleArg = Annotated[Path, typer.Argument(help=_BUNDLE_HELP, exists=True, file_okay=False, dir_okay=True)]
ProviderOpt = Annotated[
    Provider, typer.Option("--provider", help="Execution provider; `cuda` fails rather than fall back to the CPU.")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Most texts per ONNX Runtime call.", min=1, max=65536)]
TruncateOpt = Annotated[
    bool, typer.Option("--truncate/--no-truncate", help="Cut texts longer than max_length tokens (with a warning).")
]


def _printable(text: str) -> str:
    """Text safe for any UTF-8 terminal: lone surrogates become escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _read_texts(source: str) -> Iterator[str]:
    """Stream texts from a file or stdin (``-``): JSON Lines objects with a ``text`` field, else one per line."""
    if source == "-":
        yield from _parse_lines(sys.stdin, "stdin", jsonl=False)
        return
    path = Path(source)
    if not path.is_file():
        raise DataError(f"Input file {path} does not exist; give a text or .jsonl file, or - for stdin.")
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        yield from _parse_lines(fh, str(path), jsonl=jsonl)


def _parse_lines(stream: TextIO, name: str, *, jsonl: bool) -> Iterator[str]:
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip("\r\n")
        if not jsonl:
            yield line
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"Line {number} of {name} is not JSON ({err}); each line must be an object with 'text'."
            ) from err
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise DataError(f'Line {number} of {name} has no string \'text\' field; expected {{"text": "..."}}.')
        yield obj["text"]


def _with_progress(items: Iterable[Any], quiet: bool) -> Iterator[Any]:
    if quiet or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.completed} texts"), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=_stderr_console()) as progress:
        task = progress.add_task("predict", total=None)
        for item in items:
            yield item
            progress.advance(task)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def predict_command(
    bundle: BundleArg,
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to classify (or use --file).", show_default=False)
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help='Read texts from PATH: .jsonl holds one {"text": ...} object per line, any other file one text '
            "per line; `-` reads stdin the same way. Streamed, never loaded whole.",
        ),
    ] = None,
    output_format: Annotated[PredictFormat, typer.Option("--format", help="Output format on stdout.")] = (
        PredictFormat.JSONL
    ),
    provider: ProviderOpt = Provider.AUTO,
    batch_size: BatchOpt = 32,
    truncate: TruncateOpt = False,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Token limit per text (default: the bundle's).", min=1)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only on stderr.")] = False,
    engine: Annotated[
        Engine | None,
        typer.Option("--engine", help="Score --file into --output on local processes or Ray Data (see `score`)."),
    ] = None,
    workers: WorkersOpt = 1,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON Lines file for --engine.")] = None,
) -> None:
    """Classify texts with a bundle; results on stdout (JSON Lines by default)."""
    if engine is not None:
        if file is None or file == "-" or output is None or texts:
            raise typer.BadParameter("--engine scores --file PATH into --output PATH.", param_hint="--engine")
        return run_score(bundle, Path(file), output, engine, workers, batch_size, truncate, max_length, quiet)
    if texts and file is not None:
        raise typer.BadParameter("give texts as arguments or --file, not both.", param_hint="TEXTS / --file")
    if not texts and file is None:
        raise typer.BadParameter("give texts as arguments, or --file PATH (--file - for stdin).", param_hint="TEXTS")
    with warnings.catch_warnings():
        # Every warning reaches stderr (truncation is reported each time it happens), unless --quiet.
        warnings.simplefilter("ignore" if quiet else "always", UserWarning)
        _predict(bundle, texts, file, output_format, provider, batch_size, truncate, max_length, quiet)


def _predict(
    bundle: Path,
    texts: list[str] | None,
    file: str | None,
    output_format: PredictFormat,
    provider: Provider,
    batch_size: int,
    truncate: bool,
    max_length: int | None,
    quiet: bool,
) -> None:
    from lstm_onnx.runtime.predictor import TextClassifier

    model = TextClassifier.load(
        bundle, providers=provider.value, batch_size=batch_size, max_length=max_length, truncate=truncate
    )
    source = iter(texts) if texts else _read_texts(file or "-")
    tee = _Tee(source)
    try:
        results = ((tee.pop(), pred) for pred in model.iter_predict(tee.feed()))
        _render_predictions(_with_progress(results, quiet), output_format, model.labels)
    except InputError as err:
        if err.position is None:
            raise
        # Library positions are 0-based; say which argument or line the user must fix.
        n = err.position + 1
        where = f"argument {n}" if texts else f"line {n} of {'stdin' if file == '-' else file}"
        raise type(err)(f"{err} ({where})", err.position) from err


class _Tee:
    """Feed texts to iter_predict and hand each back with its prediction, holding only the read-ahead chunk."""

    def __init__(self, source: Iterator[str]) -> None:
        self._source = source
        self._pending: deque[str] = deque()

    def feed(self) -> Iterator[str]:
        for text in self._source:
            self._pending.append(text)
            yield text

    def pop(self) -> str:
        return self._pending.popleft()


def _render_predictions(results: Iterable[tuple[str, Any]], fmt: PredictFormat, labels: list[str]) -> None:
    out = sys.stdout
    if fmt is PredictFormat.JSONL:
        for text, pred in results:
            out.write(json_line(prediction_record(text, pred)) + "\n")
        return
    if fmt is PredictFormat.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["text", "label", "score", *(f"p_{label}" for label in labels), "truncated"])
        for text, pred in results:
            probs = [f"{pred.probabilities[label]:.6f}" for label in labels]
            writer.writerow([_printable(text), pred.label, f"{pred.score:.6f}", *probs, pred.truncated])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("text", "label", "score", *labels):
        table.add_column(column, overflow="fold" if column == "text" else "ellipsis")
    for text, pred in results:
        shown = _printable(" ".join(text.split()))
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        table.add_row(shown, pred.label, f"{pred.score:.4f}", *(f"{pred.probabilities[lb]:.4f}" for lb in labels))
    console = Console(file=out, width=None if out.isatty() else 160)
    console.print(table)


def evaluate_command(
    bundle: BundleArg,
    data: Annotated[
        Path, typer.Argument(help="Labelled data: IMDB directory or .tar.gz, .csv or .jsonl.", exists=True)
    ],
    split: Annotated[str, typer.Option("--split", help="Split to score (IMDB: train or test).")] = "test",
    limit: Annotated[int | None, typer.Option("--limit", help="Score a stratified sample of N texts.", min=1)] = None,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="Output format on stdout.")] = (
        ReportFormat.JSON
    ),
    provider: ProviderOpt = Provider.AUTO,
    batch_size: BatchOpt = 64,
    truncate: TruncateOpt = False,
) -> None:
    """Score a bundle on labelled data: accuracy, precision, recall, F1, confusion matrix (runtime only)."""
    from lstm_onnx.runtime.evaluation import evaluate
    from lstm_onnx.runtime.predictor import TextClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        model = TextClassifier.load(bundle, providers=provider.value, batch_size=batch_size, truncate=truncate)
        report = evaluate(model, data, split=split, limit=limit).to_dict()
    report["provider"] = model.provider
    if output_format is ReportFormat.JSON:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    labels = report["labels"]
    summary = Table(title=f"{report['n']} texts · {model.provider}")
    for column in ("accuracy", "precision (macro)", "recall (macro)", "F1 (macro)"):
        summary.add_column(column)
    summary.add_row(*(f"{report[k]:.4f}" for k in ("accuracy", "precision", "recall", "f1")))
    matrix = Table(title="confusion matrix", caption="rows: true label · columns: predicted")
    matrix.add_column("")
    for label in labels:
        matrix.add_column(label)
    for label, row in zip(labels, report["confusion_matrix"], strict=True):
        matrix.add_row(label, *(str(c) for c in row))
    console = Console()
    console.print(summary)
    console.print(matrix)


def info_command(
    bundle: BundleArg,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="Output format on stdout.")] = (
        ReportFormat.TABLE
    ),
) -> None:
    """Show a bundle's manifest, versions, parity summary and the execution providers available here."""
    from lstm_onnx.runtime.bundle import describe_bundle, load_bundle
    from lstm_onnx.runtime.session import SessionConfig

    info = describe_bundle(load_bundle(bundle, SessionConfig(providers="cpu")))
    if output_format is ReportFormat.JSON:
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{info['name']} {info['version']} ({info['variant']})", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    parity = info["parity"]
    rows = [
        ("path", info["path"]),
        ("created", info["created_at"]),
        ("format version", str(info["format_version"])),
        ("labels", ", ".join(info["labels"])),
        ("vocabulary", str(info["vocab_size"])),
        ("max length", str(info["max_length"] or "none")),
        ("versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items())),
        ("export", ", ".join(f"{k} {v}" for k, v in info["export"].items())),
        ("parity", f"passed {parity['passed']} (atol {parity['atol']}, rtol {parity['rtol']})"),
        *((f"  {name}", json.dumps(b)) for name, b in parity["backends"].items()),
        ("metrics", json.dumps(info["metrics"]) if info["metrics"] else "none"),
        ("providers", ", ".join(info["providers"]["available"])),
        ("cuda", ("usable: " if info["providers"]["cuda_usable"] else "not usable: ") + info["providers"]["cuda_note"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
