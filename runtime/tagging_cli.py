"""`predict` and `evaluate` for a tagging bundle: called by runtime/cli.py when the bundle's task is ``tag``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer

from lstm_onnx.runtime.conllu import format_conllu
from lstm_onnx.runtime.errors import DataError, InputError
from lstm_onnx.runtime.line_inputs import items_from_args, read_items
from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE
from lstm_onnx.runtime.records import json_line
from lstm_onnx.runtime.tagger import TaggedSentence, TokenTagger
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.runtime.tagging_eval import evaluate_tags

__all__ = ["TAG_PREDICT_FORMATS", "evaluate_tagging", "predict_tagging"]

TAG_PREDICT_FORMATS = ("jsonl", "conllu")
_PRE_TOKENIZED = (".conllu", ".conllu.gz")


def predict_tagging(
    tagger: TokenTagger,
    texts: list[str] | None,
    file: str | None,
    output_format: str,
    input_format: str = "auto",
    text_field: str = "text",
) -> None:
    """Tag raw texts (arguments or ``--file``) or a CoNLL-U file's gold tokens; print JSONL or CoNLL-U on stdout.

    ``--file`` is read as ``predict`` reads it for a classifier (``input_format``: ``auto``, ``text`` or ``jsonl``,
    the text under ``text_field``), except that a ``.conllu``/``.conllu.gz`` file is tagged on its gold tokens.

    Raises:
        DataError: An output format a tagger cannot write (``table``/``csv``), or unreadable input.
    """
    if output_format not in TAG_PREDICT_FORMATS:
        raise DataError(
            f"--format {output_format} is for classifiers; a tagging bundle writes {' or '.join(TAG_PREDICT_FORMATS)}."
        )
    if file is not None and file.endswith(_PRE_TOKENIZED):
        data = read_tagged(Path(file), tagset=tagger.tagset)
        results: Iterable[TaggedSentence] = tagger.tag_tokens(data.tokens)
    else:
        results = _tag_stream(tagger, texts, file, input_format, text_field)
    for i, sentence in enumerate(results, start=1):
        typer.echo(_render(sentence, output_format, i, tagger.tagset), nl=output_format == "jsonl")


def _tag_stream(
    tagger: TokenTagger, texts: list[str] | None, file: str | None, input_format: str, text_field: str
) -> Iterator[TaggedSentence]:
    """Tag arguments or a file/stdin a chunk at a time, so memory stays flat and a pipe is answered as it flows."""
    items = (
        items_from_args(texts)
        if texts
        else read_items(file or "-", input_format, text_field, max_chars=tagger.max_chars, truncate=tagger.truncate)
    )
    while chunk := list(itertools.islice(items, DEFAULT_CHUNK_SIZE)):
        for item in chunk:
            if item.text is None:
                raise DataError(f"{item.where}: {item.error}")
        texts = [item.text or "" for item in chunk]
        try:
            tagged = tagger.tag(texts)
        except InputError as err:
            if err.position is None:
                raise
            # Print what comes before the bad text, as the classifier does, then name its line (or argument): the
            # position is only within this chunk.
            yield from tagger.tag(texts[: err.position])
            where = chunk[err.position].where
            raise type(err)(f"{where}: {err}".replace(f"Text at position {err.position}", "the text")) from err
        yield from tagged


def _render(sentence: TaggedSentence, output_format: str, number: int, tagset: str) -> str:
    if output_format == "conllu":
        text = format_conllu(sentence.tokens, sentence.tags, sent_id=str(number), tagset=tagset)
        # A lone surrogate (from JSON's \ud800 or undecodable bytes) has no UTF-8 form: write it as its escape.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return json_line(sentence.to_dict())


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

    unknown = ", ".join(f"{tag} ({n})" for tag, n in report["unknown_tags"].items())
    table = Table(
        title=f"{report['tokens']} tokens, {report['sentences']} sentences · accuracy {report['accuracy']:.4f}",
        caption=f"Gold tags this tagger does not know, counted as errors: {unknown}" if unknown else None,
    )
    for column in ("tag", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    for tag, m in report["per_label"].items():
        table.add_row(tag, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    Console(width=120).print(table)
