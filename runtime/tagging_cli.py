"""`predict` and `evaluate` for a tagging bundle: called by runtime/cli.py when the bundle's task is ``tag``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from lstm_onnx.runtime.conllu import format_conllu
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.line_inputs import ErrorPolicy, Item, items_from_args, predict_items, read_items
from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE
from lstm_onnx.runtime.records import TAG_KEYS, failure_record, json_line, tag_record
from lstm_onnx.runtime.tagger import TaggedSentence, TokenTagger
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.runtime.tagging_eval import evaluate_tags

__all__ = ["TAG_PREDICT_FORMATS", "TagPredictOptions", "evaluate_tagging", "predict_tagging"]

TAG_PREDICT_FORMATS = ("jsonl", "conllu")
_PRE_TOKENIZED = (".conllu", ".conllu.gz")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TagPredictOptions:
    """How ``predict_tagging`` reads ``--file`` and paces its output (the options ``predict`` has for a classifier).

    Attributes:
        input_format: ``auto``, ``text`` or ``jsonl`` (``runtime.line_inputs``).
        text_field: JSON Lines key holding the text.
        id_field: JSON Lines key carried to the output as ``id`` (default: the line number).
        chunk_size: Texts read ahead and tagged together.
        flush: Flush stdout after each sentence (a pipe is answered as it flows).
    """

    input_format: str = "auto"
    text_field: str = "text"
    id_field: str = "id"
    chunk_size: int = DEFAULT_CHUNK_SIZE
    flush: bool = False


def predict_tagging(
    tagger: TokenTagger,
    texts: list[str] | None,
    file: str | None,
    output_format: str,
    policy: ErrorPolicy,
    options: TagPredictOptions | None = None,
) -> None:
    """Tag raw texts (arguments or ``--file``) or a CoNLL-U file's gold tokens; print JSONL or CoNLL-U on stdout.

    ``--file`` is read as ``predict`` reads it for a classifier (``runtime.line_inputs``: ``--input-format``,
    ``--text-field``, ``--id-field``), except that a ``.conllu``/``.conllu.gz`` file is tagged on its gold tokens
    (sentence numbers as ids). A text that cannot be tagged is handled by ``policy`` (``--on-error``) as for a
    classifier. With ``--file``, each JSON Lines record carries ``id`` first; a CoNLL-U sentence's ``sent_id`` is its
    id (whitespace as ``_``).

    Raises:
        DataError: An output format a tagger cannot write (``table``/``csv``), ``--on-error null`` with CoNLL-U
            output (which has no null sentence), or unreadable input.
        InputError: Under ``--on-error fail``, the first text that cannot be tagged, named by its line.
    """
    options = options or TagPredictOptions()
    if output_format not in TAG_PREDICT_FORMATS:
        raise DataError(
            f"--format {output_format} is for classifiers; a tagging bundle writes {' or '.join(TAG_PREDICT_FORMATS)}."
        )
    if output_format == "conllu" and policy.mode == "null":
        raise DataError("--on-error null writes null records, which CoNLL-U cannot hold; use --format jsonl or skip.")
    if file is not None and file.endswith(_PRE_TOKENIZED):
        data = read_tagged(Path(file), tagset=tagger.tagset)
        rows: Iterable[tuple[Item, TaggedSentence | None, str | None]] = (
            (Item(" ".join(sentence.tokens), number, f"sentence {number} of {data.source}"), sentence, None)
            for number, sentence in enumerate(tagger.tag_tokens(data.tokens), start=1)
        )
    else:
        items = (
            items_from_args(texts)
            if texts
            else read_items(
                file or "-",
                options.input_format,
                options.text_field,
                options.id_field,
                max_chars=tagger.max_chars,
                truncate=tagger.truncate,
            )
        )
        rows = policy.apply(predict_items(tagger, items, chunk_size=options.chunk_size))
    with_ids = file is not None
    for item, sentence, error in rows:
        typer.echo(_render(item, sentence, error, output_format, with_ids, tagger.tagset), nl=output_format == "jsonl")
        if options.flush:
            sys.stdout.flush()


def _render(
    item: Item, sentence: TaggedSentence | None, error: str | None, output_format: str, with_ids: bool, tagset: str
) -> str:
    ident = item.id if with_ids else None
    if output_format == "jsonl":
        if sentence is None:
            return json_line(failure_record(TAG_KEYS, error or "", id=ident))
        return json_line(tag_record(sentence, id=ident))
    if sentence is None:  # pragma: no cover - refused above: CoNLL-U has no null sentence
        raise DataError(f"{item.where}: {error}")
    sent_id = _WHITESPACE.sub("_", str(item.id))
    text = format_conllu(sentence.tokens, sentence.tags, sent_id=sent_id, tagset=tagset)
    # A lone surrogate (from JSON's \ud800 or undecodable bytes) has no UTF-8 form: write it as its escape.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def evaluate_tagging(tagger: TokenTagger, data: Path, split: str, output_format: str) -> None:
    """Score a tagging bundle on gold-tokenized data (UPOS accuracy over syntactic words); JSON or tables on stdout."""
    report: dict[str, Any] = evaluate_tags(tagger, read_tagged(data, split, tagger.tagset))
    report["provider"] = tagger.provider
    report["tagset"] = tagger.tagset
    if output_format == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from lstm_onnx.runtime.cli import escaped

    # Tags come from the bundle and the data: plain text (never rich markup), with their escapes escaped.
    unknown = ", ".join(f"{tag} ({n})" for tag, n in report["unknown_tags"].items())
    caption = f"Gold tags this tagger does not know, counted as errors: {unknown}"
    table = Table(
        title=f"{report['tokens']} tokens, {report['sentences']} sentences · accuracy {report['accuracy']:.4f}",
        caption=Text(escaped(caption)) if unknown else None,
    )
    for column in ("tag", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    for tag, m in report["per_label"].items():
        row = (f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
        table.add_row(Text(escaped(tag)), *row)
    Console(width=120).print(table)
