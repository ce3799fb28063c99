"""The tokenizer is pinned at training: the run keeps its rules, bundles copy them, verify uses the bundle's own."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest

from lstm_onnx.exporter.build import export_bundles, verify_bundle
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.contract import TOKENIZER_RULES_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer_rules import load_rules, save_rules
from tests.exporter._exporter_runs import make_run_dir


def test_training_saves_its_rules_and_the_bundle_copies_them(tiny_run_dir: Path, tiny_bundle_dir: Path) -> None:
    pinned = tiny_run_dir / TOKENIZER_RULES_FILE
    assert pinned.is_file()
    assert (tiny_bundle_dir / TOKENIZER_RULES_FILE).read_bytes() == pinned.read_bytes()


def test_export_carries_the_runs_own_rules_not_the_installed_spacys(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run")
    rules = load_rules(run / TOKENIZER_RULES_FILE)
    # Different rules than spaCy's: "gonna" stays whole, and a made-up word splits in two.
    rules["rules"].pop("gonna", None)
    rules["rules"]["moviefun"] = ["movie", "fun"]
    save_rules(rules, run / TOKENIZER_RULES_FILE)
    (built,) = export_bundles(ExportConfig(run_dir=run, out=tmp_path / "bundle"))
    assert load_rules(built.path / TOKENIZER_RULES_FILE) == rules
    tokenizer = load_bundle(built.path).tokenizer
    assert tokenizer.tokenize("gonna moviefun") == ["gonna", "movie", "fun"]


def test_export_of_an_old_run_redumps_rules_with_a_warning(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", rules=False)
    with pytest.warns(UserWarning, match=rf"no {TOKENIZER_RULES_FILE} .*spaCy {version('spacy')}'s rules"):
        (built,) = export_bundles(ExportConfig(run_dir=run, out=tmp_path / "bundle"))
    assert (built.path / TOKENIZER_RULES_FILE).is_file()


def test_verify_reads_the_bundles_own_tokenizer(tiny_run_dir: Path, tiny_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_dir, bundle)
    (bundle / TOKENIZER_RULES_FILE).write_text(json.dumps({"not": "rules"}), encoding="utf-8")
    with pytest.raises(BundleError, match=TOKENIZER_RULES_FILE):
        verify_bundle(bundle, tiny_run_dir)
