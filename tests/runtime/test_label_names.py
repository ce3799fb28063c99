"""One rule for label names on every path they enter by: a bundle's and a run's config.json, and training data."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.contract import MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError, DataError
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.session import SessionConfig
from tests.conftest import corpus_texts, make_corpus


def test_label_problem_accepts_ordinary_labels() -> None:
    assert label_problem(["neg", "pos", "très bien", "😀", "B-PER", "I-PER", "-LRB-", "``"]) is None


def test_bundle_with_an_invisible_label_is_refused(bundle_copy: Path) -> None:
    config = json.loads((bundle_copy / "config.json").read_text(encoding="utf-8"))
    config["labels"] = ["pos\u200b", "pos"]  # two classes that both print "pos"
    (bundle_copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    digest = hashlib.sha256((bundle_copy / "config.json").read_bytes()).hexdigest()
    manifest["files"]["config.json"]["sha256"] = digest
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=r"config.json: Label names must be visible text, got 'pos\\u200b'"):
        load_bundle(bundle_copy, SessionConfig(providers="cpu"))


def test_run_with_look_alike_labels_is_refused(tiny_run_dir: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.run_dir import load_run

    run = Path(shutil.copytree(tiny_run_dir, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    config["labels"] = ["pos", "\uff50\uff4f\uff53"]  # "pos" and fullwidth "ｐｏｓ"
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(BundleError, match=r"config.json: Labels 'pos' and 'ｐｏｓ' would name two classes"):
        load_run(run)


def test_training_data_with_an_invisible_label_is_refused(tmp_path: Path) -> None:
    from lstm_onnx.trainer.presets import get_preset
    from lstm_onnx.trainer.train import train

    rows = [(text, "pos\u200b" if label == "neg" else label) for text, label in make_corpus()]
    preset = get_preset("tiny", epochs=1)
    with pytest.raises(DataError, match=r"corpus: Label names must be visible text.*fix the labels in the data"):
        train(corpus_texts(rows), tmp_path / "run", preset.model, preset.train)
    assert not (tmp_path / "run").exists()


def test_tagging_data_with_a_control_character_tag_is_refused(tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    data = Path(shutil.copytree(tiny_tag_data, tmp_path / "data"))
    train = data / "tiny-train.conllu"
    train.write_text(train.read_text(encoding="utf-8").replace("\tNOUN\t", "\tNOUN\x1b[2J\t", 1), encoding="utf-8")
    with pytest.raises(DataError, match=r"Label names must be one line without control characters.*U\+001B"):
        train_tag(data, tmp_path / "run", "tiny", {}, None, False, None, "upos", NullProgress())
