"""runtime.datasets: IMDB directory/tarball, CSV and JSONL readers, their errors, stratified subsets."""

from __future__ import annotations

import csv
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from lstm_onnx.runtime.datasets import (
    LabelledTexts,
    check_labels,
    detect_format,
    read_dataset,
    stratified_sample,
    stratified_split,
)
from lstm_onnx.runtime.errors import DataError
from tests.conftest import IMDB_TARBALL

# (split, label, file name, text)
_IMDB_FILES = [
    ("train", "pos", "0_9.txt", "A wonderful film.<br /><br />Loved it."),
    ("train", "pos", "1_7.txt", "Great acting."),
    ("train", "neg", "0_2.txt", "Awful plot."),
    ("train", "neg", "1_1.txt", "Boring and dull."),
    ("train", "neg", "2_3.txt", "A waste of time."),
    ("test", "pos", "0_10.txt", "Brilliant."),
    ("test", "neg", "0_4.txt", "Poor."),
    ("train", "unsup", "0_0.txt", "No label here."),
]


def _write_imdb(root: Path) -> Path:
    base = root / "aclImdb"
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (base / split / label).mkdir(parents=True, exist_ok=True)
    for split, label, name, text in _IMDB_FILES:
        (base / split / label).mkdir(parents=True, exist_ok=True)
        (base / split / label / name).write_text(text, encoding="utf-8")
    (base / "README").write_text("readme", encoding="utf-8")
    return base


@pytest.fixture
def imdb_dir(tmp_path: Path) -> Path:
    return _write_imdb(tmp_path)


@pytest.fixture
def imdb_tar(tmp_path: Path) -> Path:
    base = _write_imdb(tmp_path / "src")
    path = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(base, arcname="aclImdb")
    return path


def _expected(split: str) -> list[tuple[str, str]]:
    rows = sorted((f"{label}/{name}", label, text) for s, label, name, text in _IMDB_FILES if s == split)
    return [(label, text) for _, label, text in rows if label != "unsup"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_read_dataset_imdb_dir_reads_labels_and_skips_unsup(imdb_dir: Path, split: str) -> None:
    data = read_dataset(imdb_dir, split)
    assert list(zip(data.labels, data.texts, strict=True)) == _expected(split)


def test_read_dataset_imdb_dir_accepts_parent_folder(imdb_dir: Path) -> None:
    assert read_dataset(imdb_dir.parent, "test").texts == read_dataset(imdb_dir, "test").texts


@pytest.mark.parametrize("split", ["train", "test"])
def test_read_dataset_imdb_tar_matches_directory(imdb_dir: Path, imdb_tar: Path, split: str) -> None:
    assert detect_format(imdb_tar) == "imdb-tar"
    assert read_dataset(imdb_tar, split) == read_dataset(imdb_dir, split).__class__(
        read_dataset(imdb_dir, split).texts, read_dataset(imdb_dir, split).labels, f"{imdb_tar} ({split})"
    )


def test_read_dataset_csv_default_review_sentiment_columns(tmp_path: Path) -> None:
    path = tmp_path / "imdb.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment"])
        writer.writerow(['Great, "really" great.\nTwo lines.', "positive"])
        writer.writerow(["Bad.", "negative"])
    data = read_dataset(path)
    assert data.texts == ['Great, "really" great.\nTwo lines.', "Bad."]
    assert data.labels == ["positive", "negative"]


def test_read_dataset_csv_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("body,y,extra\nnice,1,x\nugly,0,y\n", encoding="utf-8")
    data = read_dataset(path, text_field="body", label_field="y")
    assert (data.texts, data.labels) == (["nice", "ugly"], ["1", "0"])


def test_read_dataset_csv_missing_column_names_columns_and_option(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("body,y\nnice,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no text column 'text' or 'review'.*\['body', 'y'\].*--text-field"):
        read_dataset(path)


def test_read_dataset_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "good", "label": "pos"}\n\n{"text": "bad", "label": "neg"}\n', encoding="utf-8")
    data = read_dataset(path, "test")
    assert (data.texts, data.labels) == (["good", "bad"], ["pos", "neg"])


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ('{"text": "good"}\n', "line 1: expected an object with keys 'text' and 'label'"),
        ("{oops\n", "line 1: not valid JSON"),
    ],
)
def test_read_dataset_jsonl_bad_line_names_line(tmp_path: Path, content: str, phrase: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=phrase):
        read_dataset(path)


def test_read_dataset_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(tmp_path / "nope.csv")


def test_read_dataset_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match="Unknown data format"):
        read_dataset(path)


def test_read_dataset_directory_without_imdb_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an IMDB dataset"):
        read_dataset(tmp_path)


def test_read_dataset_empty_split(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no labelled texts"):
        read_dataset(path)


def test_read_dataset_corrupt_tarball(tmp_path: Path) -> None:
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="Cannot read the archive"):
        read_dataset(path)


def test_check_labels_rejects_unknown_label() -> None:
    data = LabelledTexts(["a", "b"], ["pos", "positive"], "x.csv")
    with pytest.raises(DataError, match=r"label\(s\) \['positive'\] not in the label set \['neg', 'pos'\]"):
        check_labels(data, ["neg", "pos"])


def _unbalanced(n: int = 100) -> LabelledTexts:
    labels = ["a" if i % 4 == 0 else "b" for i in range(n)]
    return LabelledTexts([f"t{i}" for i in range(n)], labels, "mem")


def test_stratified_split_keeps_proportions_and_is_seeded() -> None:
    data = _unbalanced()
    rest, held = stratified_split(data, 0.2, seed=3)
    assert Counter(held.labels) == {"a": 5, "b": 15}
    assert sorted(rest.texts + held.texts) == sorted(data.texts)
    assert stratified_split(data, 0.2, seed=3)[1].texts == held.texts
    assert stratified_split(data, 0.2, seed=4)[1].texts != held.texts


def test_stratified_split_too_small_raises() -> None:
    with pytest.raises(DataError, match="too few"):
        stratified_split(LabelledTexts(["a", "b"], ["x", "y"], "mem"), 0.5, seed=0)


@pytest.mark.parametrize("n", [1, 10, 37, 99])
def test_stratified_sample_size_and_proportions(n: int) -> None:
    sample = stratified_sample(_unbalanced(), n, seed=0)
    assert len(sample) == n
    assert abs(Counter(sample.labels)["a"] - n / 4) <= 1


def test_stratified_sample_larger_than_data_returns_all() -> None:
    data = _unbalanced(8)
    assert stratified_sample(data, 50, seed=0) is data


@pytest.mark.skipif(not IMDB_TARBALL.is_file(), reason="shared IMDB tarball not available")
def test_read_dataset_real_imdb_tarball_test_split() -> None:
    data = stratified_sample(read_dataset(IMDB_TARBALL, "test"), 200, seed=0)
    assert len(data) == 200
    assert Counter(data.labels) == {"neg": 100, "pos": 100}
    assert all(text.strip() for text in data.texts)
