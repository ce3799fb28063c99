"""`lstm-onnx predict`, `evaluate` and `info`: parse, call one runtime function, render. Never imports torch or spaCy.

stdout carries results only; progress (when stderr is a terminal), warnings and errors go to stderr.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_TEXT_CHARS
from lstm_onnx.runtime.records import PREDICTION_KEYS, failure_record, json_line, prediction_record
from lstm_onnx.runtime.scale_cli import Engine, WorkersOpt, run_score

if TYPE_CHECKING:
    from lstm_onnx.runtime.line_inputs import Item
    from lstm_onnx.runtime.predictor import Prediction

__all__ = ["LabelFieldOpt", "TextFieldOpt", "escaped", "evaluate_command", "info_command", "predict_command"]

_BUNDLE_HELP = (
    "Bundle directory written by `lstm-onnx export`, a .zip/.tar.gz of one, or the name of an installed model package."
)


class PredictFormat(str, Enum):
    """Output formats of `predict`."""

    JSONL = "jsonl"
    TABLE = "table"
    CSV = "csv"
    CONLLU = "conllu"


class InputFormat(str, Enum):
    """How `predict --file` reads its input."""

    AUTO = "auto"
    TEXT = "text"
    JSONL = "jsonl"


class OnError(str, Enum):
    """What `predict` does with a text it cannot score."""

    FAIL = "fail"
    SKIP = "skip"
    NULL = "null"


class ReportFormat(str, Enum):
    """Output formats of `evaluate` and `info`."""

    JSON = "json"
    TABLE = "table"


class Provider(str, Enum):
    """Execution provider choices."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


# Not `exists=True`: an installed model package is named, not located (runtime.load.resolve_bundle).
BundleArg = Annotated[Path, typer.Argument(help=_BUNDLE_HELP)]
ProviderOpt = Annotated[
    Provider, typer.Option("--provider", help="Execution provider; `cuda` fails rather than fall back to the CPU.")
]
BatchOpt = Annotated[
    int, typer.Option("--batch-size", help="Most texts per ONNX Runtime call.", min=1, max=MAX_BATCH_SIZE)
]
TruncateOpt = Annotated[
    bool, typer.Option("--truncate/--no-truncate", help="Cut texts longer than max_length tokens (with a warning).")
]

# Labelled data's field names (evaluate, and export/verify/bench --data): CSV columns or JSON Lines keys.
TextFieldOpt = Annotated[
    str | None, typer.Option("--text-field", help="CSV column / JSON key of the text (default: text, review).")
]
LabelFieldOpt = Annotated[
    str | None,
    typer.Option("--label-field", help="CSV column / JSON key of the label (default: label, sentiment)."),
]


# C0/C1 control characters (ESC starts terminal escape sequences) except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MaxCharsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-chars",
        help="Character limit per text, checked before tokenizing (default: the bundle's).",
        min=1,
        max=MAX_TEXT_CHARS,
    ),
]


def _printable(text: str) -> str:
    """Text safe for any UTF-8 terminal: lone surrogates become escapes, control characters become spaces."""
    return _CONTROL.sub(" ", text.encode("utf-8", "backslashreplace").decode("utf-8"))


# What a terminal must never receive from a file it did not write: control characters (ESC starts escape sequences
# that retitle the window, clear the screen or rewrite lines), invisible format characters (bidi overrides reorder
# what is shown), line separators and lone surrogates.
_UNSHOWABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def escaped(text: str) -> str:
    """A value read from a bundle, shown as plain text: every unshowable character written as its escape (``\\x1b``,
    ``\\u202e``), so the terminal shows what the file holds instead of obeying it."""
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if unicodedata.category(ch) in _UNSHOWABLE
        else ch
        for ch in text
    )


def _csv_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ tab or CR would start a formula, so gets a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
    output_format: Annotated[
        PredictFormat,
        typer.Option(
            "--format",
            help="Output format on stdout: jsonl, table or csv for a classifier; jsonl or conllu for a tagger.",
        ),
    ] = PredictFormat.JSONL,
    provider: ProviderOpt = Provider.AUTO,
    batch_size: BatchOpt = 32,
    truncate: TruncateOpt = False,
    max_length: Annotated[
        int | None,
        typer.Option("--max-length", help="Token limit per text (default: the bundle's).", min=1, max=MAX_TEXT_CHARS),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only on stderr.")] = False,
    max_chars: MaxCharsOpt = None,
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--input-format",
            help="How --file is read: one text per line, JSON Lines, or auto (.jsonl files; on stdin, JSON Lines "
            "when the first line is an object with the text field).",
        ),
    ] = InputFormat.AUTO,
    text_field: Annotated[str, typer.Option("--text-field", help="JSON Lines key holding the text.")] = "text",
    id_field: Annotated[
        str, typer.Option("--id-field", help="JSON Lines key carried to the output as `id` (default: line number).")
    ] = "id",
    on_error: Annotated[
        OnError,
        typer.Option(
            "--on-error",
            help="A line that cannot be scored (unreadable, empty, too long): fail stops there; skip leaves it out; "
            "null writes a record with its error. Each is reported on stderr with its line; exit code 1 if any.",
        ),
    ] = OnError.FAIL,
    engine: Annotated[
        Engine | None,
        typer.Option("--engine", help="Score --file into --output on local processes or Ray Data (see `score`)."),
    ] = None,
    workers: WorkersOpt = 1,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON Lines file for --engine.")] = None,
) -> None:
    """Classify or tag texts with a bundle; results on stdout (JSON Lines by default; conllu for a tagger)."""
    if engine is not None:
        if file is None or file == "-" or output is None or texts:
            raise typer.BadParameter("--engine scores --file PATH into --output PATH.", param_hint="--engine")
        return run_score(
            bundle, Path(file), output, engine, workers, batch_size, truncate, max_length, quiet, max_chars
        )
    if texts and file is not None:
        raise typer.BadParameter("give texts as arguments or --file, not both.", param_hint="TEXTS / --file")
    if not texts and file is None:
        raise typer.BadParameter("give texts as arguments, or --file PATH (--file - for stdin).", param_hint="TEXTS")
    with warnings.catch_warnings():
        # Every warning reaches stderr (truncation is reported each time it happens), unless --quiet.
        warnings.simplefilter("ignore" if quiet else "always", UserWarning)
        from lstm_onnx.runtime.line_inputs import ErrorPolicy, items_from_args, predict_items, read_items
        from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE, TextClassifier

        model = _load_model(bundle, provider, batch_size, truncate, (max_length, max_chars))
        # Failed lines go to stderr as they happen; --on-error fail stops at the first.
        policy = ErrorPolicy(on_error.value, lambda message: typer.echo(f"error: {message}", err=True))
        # Piped input arrives line by line: answer each batch as soon as it is full, not after 1,024 lines.
        streaming = file == "-" and not sys.stdin.isatty()
        chunk_size = batch_size if streaming else DEFAULT_CHUNK_SIZE
        if not isinstance(model, TextClassifier):  # a tagging bundle
            from lstm_onnx.runtime.tagging_cli import TagPredictOptions, predict_tagging

            options = TagPredictOptions(input_format.value, text_field, id_field, chunk_size, streaming)
            predict_tagging(model, texts, file, output_format.value, policy, options)
            policy.check()
            return
        if output_format is PredictFormat.CONLLU:
            raise DataError(
                f"--format conllu is for tagging bundles; {bundle} is a classifier: use jsonl, table or csv."
            )
        items = (
            items_from_args(texts)
            if texts
            else read_items(
                file or "-", input_format.value, text_field, id_field, max_chars=model.max_chars, truncate=truncate
            )
        )
        outcomes = predict_items(model, items, chunk_size=chunk_size)
        _render_predictions(
            policy.apply(_with_progress(outcomes, quiet)),
            output_format,
            model.labels,
            flush=streaming,
            with_ids=file is not None,
            with_errors=on_error is OnError.NULL,
        )
    policy.check()


def _load_model(
    bundle: Path, provider: Provider, batch_size: int, truncate: bool, limits: tuple[int | None, int | None]
) -> Any:
    """The model for the bundle's task, with the command's limits (``limits``: max_length, max_chars; None = the
    bundle's). ``bundle`` is a directory, an archive of one, or the name of an installed model package.
    """
    from lstm_onnx.runtime.load import load

    return load(
        str(bundle),
        providers=provider.value,
        batch_size=batch_size,
        truncate=truncate,
        max_length=limits[0],
        max_chars=limits[1],
    )


def _render_predictions(
    rows: Iterable[tuple[Item, Prediction | None, str | None]],
    fmt: PredictFormat,
    labels: list[str],
    *,
    flush: bool,
    with_ids: bool,
    with_errors: bool,
) -> None:
    """Write each prediction (and each failure ``ErrorPolicy`` keeps, with ``--on-error null``) to stdout."""
    out = sys.stdout
    if fmt is PredictFormat.JSONL:
        for item, pred, error in rows:
            out.write(json_line(_record(item, pred, error, with_ids)) + "\n")
            if flush:
                out.flush()
    elif fmt is PredictFormat.CSV:
        writer = csv.writer(out, lineterminator="\n")
        extra = ["error"] if with_errors else []
        writer.writerow(
            [
                *(["id"] if with_ids else []),
                "text",
                "label",
                "score",
                *(f"p_{lb}" for lb in labels),
                "truncated",
                *extra,
            ]
        )
        for item, pred, error in rows:
            cells = [_csv_cell(_printable(str(item.id)))] if with_ids else []
            cells.append(_csv_cell(_printable(item.text or "")))
            if pred is None:
                cells += ["", "", *("" for _ in labels), "", _csv_cell(_printable(error or ""))]
            else:
                probs = [f"{pred.probabilities[lb]:.6f}" for lb in labels]
                cells += [pred.label, f"{pred.score:.6f}", *probs, str(pred.truncated), *([""] if extra else [])]
            writer.writerow(cells)
            if flush:
                out.flush()
    else:
        _render_table(rows, labels, with_ids, out)


def _record(item: Item, pred: Prediction | None, error: str | None, with_ids: bool) -> dict[str, Any]:
    """One JSON Lines record (``runtime.records``), or for a failed line the same keys as nulls plus ``error``."""
    ident = item.id if with_ids else None
    if pred is not None:
        return prediction_record(item.text or "", pred, id=ident)
    return failure_record(PREDICTION_KEYS, error or "", id=ident, text=item.text)


def _render_table(
    rows: Iterable[tuple[Item, Prediction | None, str | None]], labels: list[str], with_ids: bool, out: TextIO
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in (*(["id"] if with_ids else []), "text", "label", "score", *labels):
        table.add_column(Text(column), overflow="fold" if column == "text" else "ellipsis")
    for item, pred, error in rows:
        shown = _printable(" ".join((item.text or "").split()))
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        ident = [Text(_printable(str(item.id)))] if with_ids else []
        if pred is None:
            table.add_row(*ident, Text(shown), "error", Text(_printable(error or "")[:60]), *("" for _ in labels))
            continue
        table.add_row(
            *ident,
            Text(shown),
            Text(pred.label),
            f"{pred.score:.4f}",
            *(f"{pred.probabilities[lb]:.4f}" for lb in labels),
        )
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
    max_length: Annotated[
        int | None,
        typer.Option("--max-length", help="Token limit per text (default: the bundle's).", min=1, max=MAX_TEXT_CHARS),
    ] = None,
    max_chars: MaxCharsOpt = None,
    text_field: TextFieldOpt = None,
    label_field: LabelFieldOpt = None,
) -> None:
    """Score a bundle on labelled data: accuracy, precision, recall, F1, confusion matrix (runtime only).

    A tagging bundle takes CoNLL-U (or word<TAB>tag, JSONL) data with gold tokens, or a folder of splits.
    """
    from lstm_onnx.runtime.evaluation import evaluate
    from lstm_onnx.runtime.predictor import TextClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        model = _load_model(bundle, provider, batch_size, truncate, (max_length, max_chars))
        if not isinstance(model, TextClassifier):  # a tagging bundle: gold tokens, UPOS accuracy
            from lstm_onnx.runtime.tagging_cli import evaluate_tagging

            evaluate_tagging(model, data, split, output_format.value)
            return
        report = evaluate(
            model, data, split=split, limit=limit, text_field=text_field, label_field=label_field, progress=True
        ).to_dict()
    report["provider"] = model.provider
    if output_format is ReportFormat.JSON:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    labels = report["labels"]
    summary = Table(title=f"{report['n']} texts · {model.provider}")
    for column in ("accuracy", "precision (macro)", "recall (macro)", "F1 (macro)"):
        summary.add_column(column)
    summary.add_row(*(f"{report[k]:.4f}" for k in ("accuracy", "precision", "recall", "f1")))
    matrix = Table(title="confusion matrix", caption="rows: true label · columns: predicted")
    matrix.add_column("")
    for label in labels:
        matrix.add_column(Text(label))
    for label, row in zip(labels, report["confusion_matrix"], strict=True):
        matrix.add_row(Text(label), *(str(c) for c in row))
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
    from lstm_onnx.runtime.load import resolve_bundle
    from lstm_onnx.runtime.session import SessionConfig

    info = describe_bundle(load_bundle(resolve_bundle(str(bundle)), SessionConfig(providers="cpu")))
    if output_format is ReportFormat.JSON:
        typer.echo(json.dumps(info, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Every value comes from the bundle's files: shown as plain text (never rich markup), its escapes escaped.
    title = Text(escaped(f"{info['name']} {info['version']} ({info['variant']})"))
    table = Table(title=title, show_header=False)
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
        ("max chars", f"{info['max_chars']:,}" if info["max_chars"] else "none"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items())),
        ("export", ", ".join(f"{k} {v}" for k, v in info["export"].items())),
        ("parity", f"passed {parity['passed']} (atol {parity['atol']}, rtol {parity['rtol']})"),
        *((f"  {name}", json.dumps(b)) for name, b in parity["backends"].items()),
        ("metrics", json.dumps(info["metrics"]) if info["metrics"] else "none"),
        ("providers", ", ".join(info["providers"]["available"])),
        ("cuda", ("usable: " if info["providers"]["cuda_usable"] else "not usable: ") + info["providers"]["cuda_note"]),
    ]
    for key, value in rows:
        table.add_row(Text(escaped(key)), Text(escaped(str(value))))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
