"""`lstm-onnx verify` on a tagging bundle; `lstm-onnx bench` refuses one with a pointer to the tagger benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from lstm_onnx.cli import app

runner = CliRunner()


def test_verify_tagging_bundle_against_its_run_passes(tiny_tag_bundle_dir: Path, tiny_tag_run_dir: Path) -> None:
    result = runner.invoke(app, ["verify", str(tiny_tag_bundle_dir), "--against", str(tiny_tag_run_dir)])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["variant"] == "fp32"
    assert report["max_abs_diff"] <= 1e-5 and report["padding_max_diff"] <= 1e-5 and report["tag_agreement"] == 1.0


def test_verify_tagging_bundle_with_tampered_model_fails_its_checks(
    tiny_tag_bundle_dir: Path, tiny_tag_run_dir: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_tag_bundle_dir, bundle)
    with open(bundle / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    result = runner.invoke(app, ["verify", str(bundle), "--against", str(tiny_tag_run_dir)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Checksum mismatch for model.onnx")


def test_bench_refuses_a_tagging_bundle_naming_the_tagger_benchmark(tiny_tag_bundle_dir: Path) -> None:
    result = runner.invoke(app, ["bench", str(tiny_tag_bundle_dir)])
    assert result.exit_code == 1
    assert "is a tagging bundle" in result.stderr and "benchmarks/tagger_bench.py" in result.stderr


def test_tagging_run_pins_tokenizer_rules_and_bundle_copies_them(
    tiny_tag_run_dir: Path, tiny_tag_bundle_dir: Path
) -> None:
    pinned = (tiny_tag_run_dir / "tokenizer.json").read_bytes()
    assert json.loads(pinned)["rules"]  # spaCy's rules, dumped once at training
    assert (tiny_tag_bundle_dir / "tokenizer.json").read_bytes() == pinned


def test_relabel_tagging_bundle_keeps_its_card_and_records_the_renaming(
    tiny_tag_bundle_dir: Path, tmp_path: Path
) -> None:
    from lstm_onnx.runtime.relabel import relabel_bundle
    from lstm_onnx.runtime.tagger import TokenTagger

    before = TokenTagger.load(tiny_tag_bundle_dir, providers="cpu")
    old = before.labels[0]
    out = relabel_bundle(tiny_tag_bundle_dir, {old: "RENAMED"}, out=tmp_path / "relabelled")
    after = TokenTagger.load(out, providers="cpu")
    assert after.labels == ["RENAMED", *before.labels[1:]]
    card = (out / "README.md").read_text(encoding="utf-8")
    original = (tiny_tag_bundle_dir / "README.md").read_text(encoding="utf-8")
    assert card.startswith(original.rstrip("\n")) and f"`{old}` → `RENAMED`" in card
