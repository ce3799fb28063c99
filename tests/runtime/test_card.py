"""The model card: HF-style YAML metadata, a usage snippet that runs, the data's citation, no machine paths."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.relabel import relabel_bundle


def _front_matter(card: str) -> dict[str, Any]:
    """The YAML block, parsed line by line: each value is written in JSON flow style, which is valid YAML."""
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, "the card must open with a --- YAML block ---"
    meta = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(": ")
        meta[key] = json.loads(value)
    return meta


def _card(bundle: Path) -> str:
    return (bundle / "README.md").read_text(encoding="utf-8")


def test_card_metadata_block(tiny_bundle_dir: Path) -> None:
    meta = _front_matter(_card(tiny_bundle_dir))
    assert meta["library_name"] == "lstm-onnx" and meta["pipeline_tag"] == "text-classification"
    assert meta["language"] == ["en"] and meta["license"] and "lstm-onnx" in meta["tags"]
    results = meta["model-index"][0]["results"][0]
    manifest = json.loads((tiny_bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    accuracy = {m["type"]: m["value"] for m in results["metrics"]}["accuracy"]
    assert accuracy == round(manifest["metrics"]["run_test"]["accuracy"], 4)
    assert meta["labels"] == ["neg", "pos"]


def test_card_metadata_parses_as_yaml(tiny_bundle_dir: Path) -> None:
    yaml = pytest.importorskip("yaml")
    block = _card(tiny_bundle_dir).split("---\n")[1]
    assert yaml.safe_load(block) == _front_matter(_card(tiny_bundle_dir))


@pytest.fixture(params=["plain", "odd name"])
def card_bundle(request: pytest.FixtureRequest, tiny_bundle_dir: Path, tmp_path: Path) -> Path:
    """The tiny bundle, or a relabelled copy in a folder whose name needs quoting in shell and Python."""
    if request.param == "plain":
        return tiny_bundle_dir
    return relabel_bundle(tiny_bundle_dir, {"neg": "negative"}, tmp_path / 'it\'s a "model" $HOME')


def test_card_usage_snippets_run(card_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = _card(card_bundle)
    python = re.search(r"```python\n(.*?)```", card, re.S)
    bash = re.search(r"```bash\n(.*?)```", card, re.S)
    assert python and bash
    monkeypatch.chdir(card_bundle.parent)  # the snippet names the bundle directory, as a user beside it would
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(python.group(1), {})  # noqa: S102 - the card's own snippet is what is tested
    label, score = printed.getvalue().split()
    assert label in load_bundle(card_bundle).labels and 0.5 <= float(score) <= 1.0
    command = next(line for line in bash.group(1).splitlines() if line.startswith("lstm-onnx "))
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["label"] == label


def test_card_cites_imdb_when_trained_on_it(tiny_bundle_dir: Path) -> None:
    bundle = load_bundle(tiny_bundle_dir, None)
    imdb = {"name": "aclImdb_v1.tar.gz", "sha256": "c40f" * 16, "format": "imdb-tar", "split": "train", "texts": 9}
    data = {"train": imdb, "test": {**imdb, "split": "test"}, "train_texts": 8, "val_texts": 1}
    card = render_card(replace(bundle.manifest, data=data), bundle.config, "imdb_bundle")
    assert "Learning Word Vectors for Sentiment Analysis" in card and "Maas, Andrew L." in card
    assert _front_matter(card)["datasets"] == ["stanfordnlp/imdb"]
    generic = _card(tiny_bundle_dir)
    assert "Maas" not in generic and "Cite the data's source" in generic


def test_card_states_limits(tiny_bundle_dir: Path) -> None:
    limits = _card(tiny_bundle_dir).split("## Limits")[1]
    assert "int8" in limits and "batch" in limits and "English" in limits


def test_card_states_character_limit(tiny_bundle_dir: Path) -> None:
    limits = _card(tiny_bundle_dir).split("## Limits")[1]
    assert "100,000 characters" in limits and "no token limit" in limits


def _int8_card(tiny_bundle_dir: Path) -> str:
    criteria = {"atol": None, "rtol": None, "min_label_agreement": 0.99, "max_prob_diff": 0.05, "prob_quantile": 0.99}
    measured = {"status": "passed", "criteria": criteria, "max_abs_diff": 0.87, "max_prob_diff": 0.13}
    parity = {
        "passed": True,
        "atol": None,
        "rtol": None,
        "backends": {
            "onnxruntime-cpu": {**measured, "label_agreement": 1.0, "texts": 720},
            "onnx-reference": {
                "status": "not verifiable",
                "criteria": criteria,
                "reason": "not verifiable: no kernels for domain(s) ['com.microsoft']",
                "max_abs_diff": 0.0,
                "label_agreement": 1.0,
                "texts": 0,
            },
        },
    }
    manifest = replace(load_bundle(tiny_bundle_dir).manifest, parity=parity)
    config = json.loads((tiny_bundle_dir / "config.json").read_text(encoding="utf-8"))
    return render_card(manifest, config, "b")


def test_card_states_the_criteria_of_a_variant_without_atol(tiny_bundle_dir: Path) -> None:
    card = _int8_card(tiny_bundle_dir)
    assert "label agreement ≥ 99%, |Δprob| ≤ 0.05 for 99% of texts" in card
    assert "atol None" not in card


def test_card_shows_no_figures_for_a_backend_that_was_not_verifiable(tiny_bundle_dir: Path) -> None:
    (row,) = [line for line in _int8_card(tiny_bundle_dir).splitlines() if line.startswith("| onnx-reference")]
    assert row == "| onnx-reference | not verifiable: no kernels for domain(s) ['com.microsoft'] | | | | |"
