"""Renaming labels: for good with `lstm-onnx relabel`, or per load with labels=."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lstm_onnx
from lstm_onnx.cli import app
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.errors import BundleError, LabelError
from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.relabel import relabel_bundle, rename_labels

TEXTS = ["A wonderful, moving film.", "Boring and awful."]
RENAME = ["--label", "neg=negative", "--label", "pos=positive"]


def test_relabel_command_writes_a_new_consistent_bundle(
    bundle_copy: Path, tmp_path: Path, tiny_model: TextClassifier
) -> None:
    before = {f.name: f.read_bytes() for f in bundle_copy.iterdir()}
    result = CliRunner().invoke(app, ["relabel", str(bundle_copy), *RENAME, "--out", str(tmp_path / "renamed")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "renamed")
    assert {f.name: f.read_bytes() for f in bundle_copy.iterdir()} == before  # the source is untouched
    model = TextClassifier.load(tmp_path / "renamed", providers="cpu")  # checksums hold
    assert model.labels == ["negative", "positive"]
    expected = {"neg": "negative", "pos": "positive"}
    assert [p.label for p in model.predict(TEXTS)] == [expected[p.label] for p in tiny_model.predict(TEXTS)]
    card = (tmp_path / "renamed" / "README.md").read_text(encoding="utf-8")
    assert '"negative", "positive"' in card and "`neg`" not in card
    assert 'lstm_onnx.load("renamed")' in card
    metrics = json.loads((tmp_path / "renamed" / "manifest.json").read_text(encoding="utf-8"))["metrics"]["run_test"]
    assert metrics["labels"] == ["negative", "positive"] and sorted(metrics["per_label"]) == ["negative", "positive"]


def test_relabel_default_target_and_in_place_with_force(bundle_copy: Path) -> None:
    result = CliRunner().invoke(app, ["relabel", str(bundle_copy), "--label", "pos=good"])
    assert result.exit_code == 0, result.stderr
    assert load_bundle(bundle_copy.with_name("bundle-relabelled")).labels == ["neg", "good"]
    assert load_bundle(bundle_copy).labels == ["neg", "pos"]
    again = CliRunner().invoke(app, ["relabel", str(bundle_copy), "--label", "pos=good"])
    assert again.exit_code == 1 and "already exists; pass --force" in again.stderr
    in_place = CliRunner().invoke(app, ["relabel", str(bundle_copy), "--label", "pos=good", "--force"])
    assert in_place.exit_code == 0, in_place.stderr
    assert load_bundle(bundle_copy).labels == ["neg", "good"]
    assert sorted(p.name for p in bundle_copy.parent.iterdir()) == ["bundle", "bundle-relabelled"]  # no leftovers


@pytest.mark.parametrize(
    ("names", "phrase"),
    [
        ({"neutral": "x"}, "Unknown label"),
        ({"neg": "pos"}, "would name two classes"),
        (["a", "a"], "would name two classes"),
        ({"neg": " "}, "non-empty strings"),
        (["a"], "Got 1 label names for a bundle with 2"),
        ("ab", "must be a list of names"),
        ({"neg": "bad\nRequires-Dist: evil"}, "one line without control characters"),
        (["neg", "pos\u2028"], "one line without control characters"),
        (["neg\t", "pos"], "one line without control characters"),
        ({"neg": "pos\u200b"}, r"visible text, got 'pos\\u200b': U\+200B ZERO WIDTH SPACE .* prints like 'pos'"),
        (["\u202epos", "neg"], "U\\+202E RIGHT-TO-LEFT OVERRIDE is an invisible format character"),
        (["neg", "\ufeffneg2"], "U\\+FEFF ZERO WIDTH NO-BREAK SPACE"),
        (["pos", "\uff50\uff4f\uff53"], r"would name two classes with names that print alike \('pos'\)"),
        (["pos", "pos\u00a0"], "would name two classes with names that print alike"),
    ],
)
def test_rename_labels_rejects_bad_names(names: object, phrase: str) -> None:
    with pytest.raises(LabelError, match=phrase):
        rename_labels(["neg", "pos"], names)  # type: ignore[arg-type]


def test_relabel_failure_leaves_nothing(bundle_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(LabelError):
        relabel_bundle(bundle_copy, {"nope": "x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_relabel_force_never_replaces_a_folder_that_is_not_a_bundle(bundle_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["relabel", str(bundle_copy), *RENAME, "--out", str(folder), "--force"])
    assert result.exit_code == 1
    assert "exists and is not a bundle" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "work"]  # no staging left beside it


def test_relabel_force_replaces_an_earlier_relabelled_bundle(bundle_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "renamed"
    relabel_bundle(bundle_copy, {"neg": "bad"}, out)
    relabel_bundle(bundle_copy, {"neg": "negative"}, out, force=True)
    assert load_bundle(out).labels == ["negative", "pos"]


def test_relabel_refuses_a_target_inside_the_bundle(bundle_copy: Path) -> None:
    before = sorted(p.name for p in bundle_copy.iterdir())
    with pytest.raises(BundleError, match="sits inside the bundle"):
        relabel_bundle(bundle_copy, {"neg": "negative"}, bundle_copy / "renamed")
    assert sorted(p.name for p in bundle_copy.iterdir()) == before
    assert load_bundle(bundle_copy).labels == ["neg", "pos"]


@pytest.mark.parametrize("labels", [["negative", "positive"], {"neg": "negative", "pos": "positive"}])
def test_load_overrides_labels(tiny_bundle_dir: Path, labels: object, tiny_model: TextClassifier) -> None:
    model = lstm_onnx.load(tiny_bundle_dir, providers="cpu", labels=labels)  # type: ignore[arg-type]
    assert model.labels == ["negative", "positive"]
    probs = [p.probabilities for p in model.predict(TEXTS)]
    assert [list(p) for p in probs] == [["negative", "positive"]] * 2
    assert [list(p.values()) for p in probs] == [list(p.probabilities.values()) for p in tiny_model.predict(TEXTS)]


def test_relabel_command_bad_label_option(bundle_copy: Path) -> None:
    result = CliRunner().invoke(app, ["relabel", str(bundle_copy), "--label", "neg"])
    assert result.exit_code == 2 and "expected OLD=NEW" in result.stderr
    unknown = CliRunner().invoke(app, ["relabel", str(bundle_copy), "--label", "bad=x"])
    assert unknown.exit_code == 1 and "Unknown label(s) ['bad']" in unknown.stderr


def test_relabel_command_invisible_label_exit_1(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["relabel", str(tiny_bundle_dir), "--label", "neg=pos\u200b", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: Label names must be visible text") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
