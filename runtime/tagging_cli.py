"""`predict` and `evaluate` for a tagging bundle: called by runtime/cli.py when the bundle's task is ``tag``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from lstm_onnx.runtime.conllu import format_conllu
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tagger import TaggedSentence, TokenTagger
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.runtime.tagging_eval import evaluate_tags

__all__ = ["TAG_PREDICT_FORMATS", "evaluate_tagging", "predict_tagging"]

TAG_PREDICT_FORMATS = ("jsonl", "conllu")
_PRE_TOKENIZED = (".conllu", ".conllu.gz")


def predict_tagging(
    bundle: Path, texts: list[str] | None, file: str | None, output_format: str, provider: str, batch_size: int
) -> None:
    """Tag raw texts (arguments or ``--file``) or a CoNLL-U file's gold tokens; print JSONL or CoNLL-U on stdout.

    Raises:
        DataError: An output format a tagger cannot write (``table``/``csv``), or unreadable input.
    """
    if output_format not in TAG_PREDICT_FORMATS:
        raise DataError(
            f"--format {output_format} is for classifiers; a tagging bundle writes {' or '.join(TAG_PREDICT_FORMATS)}."
        )
    tagger = TokenTagger.load(bundle, providers=provider, batch_size=batch_size)
    if file is not None and file.endswith(_PRE_TOKENIZED):
        data = read_tagged(Path(file), tagset=tagger.tagset)
        results = tagger.tag_tokens(data.tokens)
    else:
        from lstm_onnx.runtime.cli import _read_texts

        source = texts if texts else list(_read_texts(file or "-"))
        results = tagger.tag(source)
    for i, sentence in enumerate(results, start=1):
        typer.echo(_render(sentence, output_format, i, tagger.tagset), nl=output_format == "jsonl")


def _render(sentence: TaggedSentence, output_format: str, number: int, tagset: str) -> str:
    if output_format == "conllu":
        return format_conllu(sentence.tokens, sentence.tags, sent_id=str(number), tagset=tagset)
    return json.dumps(sentence.to_dict(), ensure_ascii=False)


def evaluate_tagging(bundle: Path, data: Path, split: str, output_format: str, provider: str, batch_size: int) -> None:
    """Score a tagging bundle on gold-tokenized data (UPOS accuracy over syntactic words); JSON or tables on stdout."""
    tagger = TokenTagger.load(bundle, providers=provider, batch_size=batch_size)
    report: dict[str, Any] = evaluate_tags(tagger, read_tagged(data, split, tagger.tagset))
    report["provider"] = tagger.provider
    report["tagset"] = tagger.tagset
    if output_format == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{report['tokens']} tokens, {report['sentences']} sentences · accuracy {report['accuracy']:.4f}"
    )
    for column in ("tag", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    for tag, m in report["per_label"].items():
        table.add_row(tag, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    Console(width=120).print(table)
