"""Tagged sentences from CoNLL-U, ``word<TAB>tag`` or JSONL files, and from a folder holding train/dev/test splits.

Formats, chosen by file name:

- ``*.conllu`` / ``*.conllu.gz``: syntactic words and their UPOS (or XPOS) tags (``runtime.conllu``).
- ``*.tsv`` / ``*.txt`` (optionally ``.gz``): one ``word<TAB>tag`` per line, a blank line between sentences.
- ``*.jsonl`` (optionally ``.gz``): one ``{"tokens": [...], "tags": [...]}`` object per line.

A folder holds one file per split whose name contains ``-train``, ``-dev`` and ``-test`` (as UD treebanks do).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.conllu import READ_ERRORS, open_text, read_conllu
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.json_text import parse_json

__all__ = ["SPLITS", "TaggedSentences", "find_split", "read_tagged"]

SPLITS = ("train", "dev", "test")
_SUFFIXES = (".conllu", ".tsv", ".txt", ".jsonl")


@dataclass(frozen=True)
class TaggedSentences:
    """Sentences as token lists with one tag per token.

    Attributes:
        tokens: N sentences, each a non-empty list of tokens.
        tags: N lists, ``len(tags[i]) == len(tokens[i])``.
        source: Where they came from (file name, for messages and the run config).
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_tokens(self) -> int:
        """Total tokens over all sentences."""
        return sum(len(t) for t in self.tokens)

    def tag_set(self) -> list[str]:
        """Distinct tags, sorted (the label order of a tagger trained on these sentences)."""
        return sorted({tag for row in self.tags for tag in row})

    def tag_counts(self) -> Counter[str]:
        """How often each tag occurs."""
        return Counter(tag for row in self.tags for tag in row)

    def head(self, n: int) -> TaggedSentences:
        """The first ``n`` sentences."""
        return TaggedSentences(self.tokens[:n], self.tags[:n], self.source)


def _base_name(path: Path) -> str:
    name = path.name
    return name[:-3] if name.endswith(".gz") else name


def find_split(folder: Path, split: str) -> Path | None:
    """The one file in ``folder`` for ``split`` (name contains ``-<split>``), or ``None`` when there is none.

    Raises:
        DataError: Several files match.
    """
    matches = sorted(
        p for p in folder.iterdir() if p.is_file() and f"-{split}" in p.name and _base_name(p).endswith(_SUFFIXES)
    )
    if len(matches) > 1:
        raise DataError(f"{folder} holds several {split} files {[p.name for p in matches]}; keep one.")
    return matches[0] if matches else None


def read_tagged(path: Path | str, split: str | None = None, tagset: str = "upos") -> TaggedSentences:
    """Read tagged sentences from a file, or one split of a folder.

    Args:
        path: A tagged file, or a folder with ``*-train``/``*-dev``/``*-test`` files.
        split: For a folder, which split; ignored for a file.
        tagset: ``upos`` or ``xpos`` (CoNLL-U only).

    Returns:
        The sentences.

    Raises:
        DataError: Missing path or split, unknown format, malformed line (file and line named), no sentences.
    """
    path = Path(path)
    if path.is_dir():
        if split not in SPLITS:
            raise DataError(f"{path} is a folder; say which split to read ({', '.join(SPLITS)}).")
        found = find_split(path, split)
        if found is None:
            raise DataError(
                f"{path} has no {split} file (a name containing '-{split}', e.g. en_ewt-ud-{split}.conllu)."
            )
        path = found
    if not path.is_file():
        raise DataError(f"Tagged data {path} does not exist; give a .conllu(.gz), .tsv or .jsonl file or a folder.")
    base = _base_name(path)
    if base.endswith(".conllu"):
        rows = [(s.words, s.tags) for s in read_conllu(path, tagset)]
    elif base.endswith((".tsv", ".txt")):
        rows = list(_read_word_tag(path))
    elif base.endswith(".jsonl"):
        rows = list(_read_jsonl(path))
    else:
        raise DataError(f"{path}: unknown tagged-data format; expected .conllu, .tsv/.txt (word<TAB>tag) or .jsonl.")
    if not rows:
        raise DataError(f"{path} holds no sentences.")
    return TaggedSentences([r[0] for r in rows], [r[1] for r in rows], path.name)


def _read_word_tag(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    words: list[str] = []
    tags: list[str] = []
    try:
        with open_text(path) as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if words:
                        yield words, tags
                    words, tags = [], []
                    continue
                cols = line.split("\t")
                if len(cols) != 2 or not cols[0] or not cols[1]:
                    raise DataError(f"{path}, line {number}: expected 'word<TAB>tag', got {line[:80]!r}.")
                words.append(cols[0])
                tags.append(cols[1])
    except READ_ERRORS as err:
        raise DataError(f"{path} is not readable UTF-8 text ({err}); check the file is complete.") from err
    if words:
        yield words, tags


def _read_jsonl(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    try:
        with open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}, line {number}"
                try:
                    obj = parse_json(line)
                except ValueError as err:
                    raise DataError(f"{where}: not valid JSON ({err}).") from err
                tokens: Any = obj.get("tokens") if isinstance(obj, dict) else None
                tags: Any = obj.get("tags") if isinstance(obj, dict) else None
                if not (_strings(tokens) and _strings(tags)) or len(tokens) != len(tags) or not tokens:
                    raise DataError(
                        f'{where}: expected {{"tokens": [...], "tags": [...]}} with equal, non-empty string lists.'
                    )
                yield list(tokens), list(tags)
    except READ_ERRORS as err:
        raise DataError(f"{path} is not readable UTF-8 text ({err}); check the file is complete.") from err


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)
