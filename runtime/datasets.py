"""Labelled text readers (stdlib + numpy only): IMDB directory or tarball, CSV, JSONL; stratified subsets.

Formats, detected from the path:

- IMDB Large Movie Review set in its original layout (``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``),
  either the unpacked directory (the ``aclImdb`` folder or its parent) or the ``.tar.gz`` read without unpacking.
  Labels come from the ``pos``/``neg`` folder, ratings from the file name; ``unsup`` is skipped.
- CSV (``.csv``, ``.tsv``) with a header row; the text and label columns are named by ``text_field`` and
  ``label_field`` (defaults: the first of ``text``/``review`` and of ``label``/``sentiment`` present).
- JSON Lines (``.jsonl``, ``.ndjson``): one object per line, by default ``{"text": ..., "label": ...}``.

CSV and JSONL files have no split: the whole file is the split asked for. Give training a separate
test file (``lstm-onnx train --test-data``) to get test metrics.

Texts are returned in a fixed order (IMDB: sorted by file path), so the same files always give the same data.
"""

from __future__ import annotations

import csv
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lstm_onnx.runtime.errors import DataError

__all__ = [
    "FORMATS",
    "IMDB_LABELS",
    "LabelledTexts",
    "check_labels",
    "detect_format",
    "read_dataset",
    "stratified_sample",
    "stratified_split",
]

FORMATS = ("imdb-dir", "imdb-tar", "csv", "jsonl")
SPLITS = ("train", "test")
IMDB_LABELS = ("neg", "pos")
_TEXT_FIELDS = ("text", "review")
_LABEL_FIELDS = ("label", "sentiment")
# aclImdb/<split>/<label>/<id>_<rating>.txt, with any leading folders.
_IMDB_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


@dataclass(frozen=True)
class LabelledTexts:
    """Texts and their string labels, aligned by position.

    Attributes:
        texts: Raw texts.
        labels: One label per text.
        source: Where the data came from (path and split), used in messages.
        origin: The file or directory read (``None`` for texts made in code); recorded by name and digest only.
        split: The split read (``"train"``/``"test"``) where the format has splits.
    """

    texts: list[str]
    labels: list[str]
    source: str = ""
    # Provenance, not content: two reads of the same texts compare equal wherever the files lie.
    origin: Path | None = field(default=None, compare=False)
    split: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{self.source}: {len(self.texts)} texts but {len(self.labels)} labels.")

    def __len__(self) -> int:
        return len(self.texts)

    def label_set(self) -> list[str]:
        """The distinct labels, sorted (this order becomes the class-id order)."""
        return sorted(set(self.labels))

    def subset(self, indices: Sequence[int] | np.ndarray, source: str | None = None) -> LabelledTexts:
        """The items at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        return LabelledTexts(
            [self.texts[i] for i in idx], [self.labels[i] for i in idx], source or self.source, self.origin, self.split
        )


def detect_format(path: Path) -> str:
    """Name the format of ``path`` (one of ``FORMATS``).

    Raises:
        DataError: The path does not exist or its format is not recognised.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"Data path {path} does not exist; check the path.")
    if path.is_dir():
        if _imdb_root(path) is not None:
            return "imdb-dir"
        raise DataError(
            f"Directory {path} is not an IMDB dataset: expected train/pos, train/neg, test/pos, test/neg "
            "folders (the unpacked aclImdb_v1.tar.gz) inside it or in its aclImdb/ folder."
        )
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "imdb-tar"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise DataError(
        f"Unknown data format for {path}: expected an IMDB directory or .tar.gz, a .csv/.tsv file, "
        "or a .jsonl file (one JSON object per line)."
    )


def read_dataset(
    path: Path | str,
    split: str = "train",
    text_field: str | None = None,
    label_field: str | None = None,
) -> LabelledTexts:
    """Read one split of a labelled dataset, the format detected from ``path``.

    Args:
        path: IMDB directory or tarball, CSV file or JSONL file.
        split: ``"train"`` or ``"test"``; CSV and JSONL files have no split, the whole file is returned.
        text_field: CSV column / JSON key holding the text (default: ``text``, else ``review`` for CSV).
        label_field: CSV column / JSON key holding the label (default: ``label``, else ``sentiment`` for CSV).

    Returns:
        The texts and labels (labels as strings).

    Raises:
        DataError: Missing path, unknown format, missing column/key, malformed line, or an empty split.
    """
    path = Path(path)
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; expected one of {list(SPLITS)}.")
    fmt = detect_format(path)
    source = f"{path} ({split})" if fmt.startswith("imdb") else str(path)
    if fmt == "imdb-dir":
        data = _read_imdb_dir(path, split, source)
    elif fmt == "imdb-tar":
        data = _read_imdb_tar(path, split, source)
    elif fmt == "csv":
        data = _read_csv(path, text_field, label_field)
    else:
        data = _read_jsonl(path, text_field or "text", label_field or "label")
    if not data.texts:
        raise DataError(f"{source} holds no labelled texts; check the path and the split.")
    return replace(data, origin=path, split=split if fmt.startswith("imdb") else None)


def check_labels(data: LabelledTexts, labels: Sequence[str]) -> None:
    """Require every label of ``data`` to be one of ``labels``.

    Raises:
        DataError: Names the unknown labels, how often they occur, and the expected set.
    """
    known = set(labels)
    unknown = sorted(set(data.labels) - known)
    if unknown:
        count = sum(1 for label in data.labels if label not in known)
        raise DataError(
            f"{data.source}: {count} text(s) have label(s) {unknown[:5]} not in the label set {list(labels)}; "
            "use data labelled like the training data (or pick the right --label-field)."
        )


def stratified_split(data: LabelledTexts, fraction: float, seed: int) -> tuple[LabelledTexts, LabelledTexts]:
    """Split off a seeded, stratified ``fraction`` of ``data`` (e.g. validation from train).

    Each label contributes ``round(fraction * count)`` items, at least one when it has two or more.

    Returns:
        ``(rest, held_out)``, each in the original order.

    Raises:
        DataError: ``fraction`` is outside (0, 1) or either part would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"Validation fraction must be in (0, 1), got {fraction}.")
    held = _pick_per_label(data.labels, lambda n: min(n - 1, max(1, round(fraction * n))) if n > 1 else 0, seed)
    held_set = set(held.tolist())
    rest = [i for i in range(len(data)) if i not in held_set]
    if not held_set or not rest:
        raise DataError(
            f"{data.source}: {len(data)} texts are too few to hold out a {fraction:.0%} validation split; "
            "give more data."
        )
    return data.subset(rest), data.subset(sorted(held_set), f"{data.source} [validation]")


def stratified_sample(data: LabelledTexts, n: int, seed: int) -> LabelledTexts:
    """A seeded subset of ``n`` items keeping the label proportions (``--limit``); all of ``data`` if n >= len.

    Raises:
        DataError: ``n`` < 1.
    """
    if n < 1:
        raise DataError(f"--limit must be >= 1, got {n}.")
    if n >= len(data):
        return data
    fraction = n / len(data)
    picked = _pick_per_label(data.labels, lambda count: round(fraction * count), seed)
    # Rounding per label can miss n by a few items; fix up from a seeded permutation of the rest.
    if len(picked) != n:
        rng = np.random.default_rng(seed + 1)
        if len(picked) > n:
            picked = np.sort(rng.permutation(picked)[:n])
        else:
            remaining = np.setdiff1d(np.arange(len(data)), picked)
            picked = np.sort(np.concatenate([picked, rng.permutation(remaining)[: n - len(picked)]]))
    return data.subset(picked, f"{data.source} [limit {n}]")


def _pick_per_label(labels: Sequence[str], how_many: Callable[[int], int], seed: int) -> np.ndarray:
    """Seeded choice of ``how_many(count)`` indices per label; returns sorted int64 indices."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(labels, dtype=object)
    chosen: list[np.ndarray] = []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(arr == label)
        k = int(how_many(len(idx)))
        chosen.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _imdb_root(path: Path) -> Path | None:
    for root in (path, path / "aclImdb"):
        if all((root / split / label).is_dir() for split in SPLITS for label in IMDB_LABELS):
            return root
    return None


def _read_imdb_dir(path: Path, split: str, source: str) -> LabelledTexts:
    root = _imdb_root(path)
    if root is None:  # pragma: no cover - detect_format checked it
        raise DataError(f"{path} is not an IMDB directory.")
    files = sorted((root / split).glob("*/*.txt"))
    items = []
    for file in files:
        match = _IMDB_MEMBER.search(file.relative_to(root).as_posix())
        if match:
            items.append((match.group(2), file.read_text(encoding="utf-8-sig", errors="replace")))
    return _imdb_result(items, source)


def _read_imdb_tar(path: Path, split: str, source: str) -> LabelledTexts:
    items: list[tuple[str, str, str]] = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                match = _IMDB_MEMBER.search(member.name)
                if not member.isfile() or match is None or match.group(1) != split:
                    continue
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - regular files always have content
                    continue
                items.append((member.name, match.group(2), handle.read().decode("utf-8-sig", errors="replace")))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"Cannot read the archive {path}: {err}. Is it a complete aclImdb_v1.tar.gz?") from err
    items.sort(key=lambda item: item[0])
    return _imdb_result([(label, text) for _, label, text in items], source)


def _imdb_result(items: Iterable[tuple[str, str]], source: str) -> LabelledTexts:
    pairs = list(items)
    return LabelledTexts([text for _, text in pairs], [label for label, _ in pairs], source)


def _pick_field(header: Sequence[str], given: str | None, defaults: Sequence[str], what: str, path: Path) -> str:
    candidates = [given] if given else list(defaults)
    for name in candidates:
        if name in header:
            return name
    option = "--text-field" if what == "text" else "--label-field"
    raise DataError(
        f"{path} has no {what} column {' or '.join(repr(c) for c in candidates)}; its columns are {list(header)}. "
        f"Name the right one with {option}."
    )


def _read_csv(path: Path, text_field: str | None, label_field: str | None) -> LabelledTexts:
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    texts: list[str] = []
    labels: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = list(reader.fieldnames or [])
            text_col = _pick_field(header, text_field, _TEXT_FIELDS, "text", path)
            label_col = _pick_field(header, label_field, _LABEL_FIELDS, "label", path)
            for row in reader:
                text, label = row.get(text_col), row.get(label_col)
                if text is None or label is None or not label.strip():
                    raise DataError(
                        f"{path}, line {reader.line_num}: missing {text_col!r} or {label_col!r} value; "
                        "fix or remove the row."
                    )
                texts.append(text)
                labels.append(label.strip())
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err}); re-save it as UTF-8.") from err
    except csv.Error as err:
        raise DataError(f"{path} is not valid CSV: {err}.") from err
    return LabelledTexts(texts, labels, str(path))


def _read_jsonl(path: Path, text_field: str, label_field: str) -> LabelledTexts:
    texts: list[str] = []
    labels: list[str] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except (ValueError, RecursionError) as err:
                    raise DataError(f"{path}, line {line_no}: not valid JSON ({str(err)[:120]}).") from err
                if not isinstance(obj, dict) or text_field not in obj or label_field not in obj:
                    keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                    raise DataError(
                        f"{path}, line {line_no}: expected an object with keys {text_field!r} and {label_field!r}, "
                        f"got {keys}. Name the keys with --text-field/--label-field."
                    )
                text, label = obj[text_field], obj[label_field]
                # A label may be a number (0/1) but never null, a bool or a container; a text must be a string.
                if not isinstance(text, str) or isinstance(label, (bool, list, dict)) or label is None:
                    raise DataError(
                        f"{path}, line {line_no}: {text_field!r} must be a string and {label_field!r} a string or "
                        f"number, got {type(text).__name__} and {type(label).__name__}; fix or remove the line."
                    )
                texts.append(text)
                labels.append(str(label))
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err}); re-save it as UTF-8.") from err
    return LabelledTexts(texts, labels, str(path))
