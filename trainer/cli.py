"""``lstm-onnx train``: parse options, call ``trainer.train.train``, render the test metrics.

torch-using modules are imported inside the command, so ``lstm-onnx --help`` never loads torch.
"""

from __future__ import annotations

import json
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from lstm_onnx.runtime.datasets import LabelledTexts, detect_format, read_dataset, stratified_sample
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.json_text import parse_json
from lstm_onnx.runtime.tokenizer_rules import load_rules
from lstm_onnx.trainer.presets import PresetName  # torch-free: the CLI's choices come from the presets themselves

__all__ = ["train_command"]


class DeviceChoice(str, Enum):
    """Where to train."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Task(str, Enum):
    """What to train: a text classifier or a token tagger."""

    classify = "classify"
    tag = "tag"


class _RichProgress:
    """Renders training progress on stderr: a live bar on a terminal, else one line per epoch."""

    def __init__(self, live: bool, quiet: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = live
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def on_stage(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{message}[/dim]")

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=batches, epoch=f"{epoch}/{epochs}", loss=0.0, acc=0.0)

    def on_batch(self, loss: float, accuracy: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, loss=loss, acc=accuracy)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if not self.quiet:
            self.console.print(
                f"epoch {record['epoch']}: train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"
                f" | val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f}"
            )


def _read_test(
    data: Path, test_data: Path | None, text_field: str | None, label_field: str | None
) -> LabelledTexts | None:
    if test_data is not None:
        return read_dataset(test_data, "test", text_field, label_field)
    if detect_format(data).startswith("imdb"):
        return read_dataset(data, "test")
    warnings.warn(
        f"{data} has no test split and no --test-data was given; the run reports no test metrics.", stacklevel=2
    )
    return None


def _read_json(path: Path) -> Any:
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"Config file {path} is not readable JSON ({err}); fix it or drop --config.") from err


def _render(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if result.test is not None:
        test = result.test
        table = Table(title=f"Test metrics ({test['n']} texts, best epoch {result.best_epoch})")
        for col in ("label", "precision", "recall", "f1", "support"):
            table.add_column(col, justify="left" if col == "label" else "right")
        for name, m in test["per_label"].items():
            row = (f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
            table.add_row(Text(name), *row)  # a label is plain text, never rich markup
        table.add_row("macro", f"{test['precision']:.4f}", f"{test['recall']:.4f}", f"{test['f1']:.4f}", str(test["n"]))
        console.print(table)
        console.print(f"accuracy {test['accuracy']:.4f}")
    else:
        last = result.history[-1]
        console.print(f"validation accuracy {last['val_accuracy']:.4f} (no test data)")
    console.print(str(result.run_dir), soft_wrap=True, highlight=False)


def train_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="Training data: IMDB aclImdb directory or .tar.gz, a .csv/.tsv or a .jsonl file.", exists=True
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to create (or to continue with --resume).")],
    preset: Annotated[PresetName, typer.Option(help="Settings to start from: tiny, cpu or gpu.")] = PresetName.cpu,
    task: Annotated[
        Task, typer.Option(help="classify (texts) or tag (tokens: DATA is CoNLL-U or a folder of -train/-dev/-test).")
    ] = Task.classify,
    tagset: Annotated[str, typer.Option(help="With --task tag: upos or xpos (CoNLL-U column).")] = "upos",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use a stratified sample of N training (and N test) texts.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, max=1000, help="Maximum epochs (overrides the preset).")] = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="GloVe/word2vec text vectors (plain or .gz) to start from."),
    ] = None,
    device: Annotated[DeviceChoice | None, typer.Option(help="auto, cpu or cuda (overrides the preset).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed for split, initialisation and batch order.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue the run in --out.")] = False,
    test_data: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Test file for CSV/JSONL training data (whole file)."),
    ] = None,
    text_field: Annotated[
        str | None, typer.Option(help="CSV column / JSON key of the text (default: text, or review).")
    ] = None,
    label_field: Annotated[
        str | None, typer.Option(help="CSV column / JSON key of the label (default: label, or sentiment).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help='JSON {"model": {...}, "train": {...}} applied over the preset; options above win over it.',
        ),
    ] = None,
    tokenizer_rules: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Tokenizer rules to pin (the tokenizer.json of a run or bundle): trains where spaCy is not installed.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the resolved config on stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and results only.")] = False,
) -> None:
    """Train a BiLSTM classifier, or a tagger with --task tag, and write a run directory (weights, vocab, metrics)."""
    rules = load_rules(tokenizer_rules) if tokenizer_rules is not None else None
    if task is Task.tag:
        from lstm_onnx.trainer.tag_cli import describe, train_tag

        overrides = {
            "epochs": epochs,
            "embeddings": str(embeddings) if embeddings else None,
            "device": device.value if device else None,
            "seed": seed,
        }
        progress = _RichProgress(live=sys.stderr.isatty() and not quiet, quiet=quiet)
        file = _read_json(config) if config is not None else None
        result = train_tag(data, out, preset.value, overrides, file, resume, limit, tagset, progress, rules)
        typer.echo(describe(result))
        return
    from lstm_onnx.trainer.presets import apply_config, get_preset
    from lstm_onnx.trainer.train import train

    # Precedence: preset < --config file < command-line options.
    chosen = get_preset(preset.value)
    if config is not None:
        chosen = apply_config(chosen, _read_json(config), str(config))
    overrides = {
        "epochs": epochs,
        "embeddings": str(embeddings) if embeddings else None,
        "device": device.value if device else None,
        "seed": seed,
    }
    chosen = apply_config(chosen, {"train": {k: v for k, v in overrides.items() if v is not None}}, "options")
    if verbose and not quiet:
        resolved = {"model": chosen.model.to_dict(), "train": chosen.train.to_dict()}
        typer.echo(f"resolved config: {json.dumps(resolved)}", err=True)
    train_data = read_dataset(data, "train", text_field, label_field)
    test = _read_test(data, test_data, text_field, label_field)
    if limit is not None:
        train_data = stratified_sample(train_data, limit, chosen.train.seed)
        test = stratified_sample(test, limit, chosen.train.seed) if test is not None else None
    progress = _RichProgress(live=sys.stderr.isatty() and not quiet, quiet=quiet)
    result = train(
        train_data,
        out,
        chosen.model,
        chosen.train,
        test_data=test,
        resume=resume,
        progress=progress,
        tokenizer_rules=rules,
    )
    _render(result)
