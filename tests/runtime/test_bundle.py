from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lstm_onnx.runtime.bundle import Manifest, load_bundle
from lstm_onnx.runtime.contract import BUNDLE_FORMAT_VERSION, CHAR_VOCAB_FILE, MANIFEST_FILE, MODEL_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.session import SessionConfig

CPU = SessionConfig(providers="cpu")


def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _reseal(bundle: Path, name: str) -> None:
    """Update the manifest checksum of ``name`` so only the deliberate inconsistency remains."""
    digest = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    _edit_json(bundle / MANIFEST_FILE, lambda m: m["files"][name].update(sha256=digest))


def test_load_bundle_reads_a_complete_bundle(tiny_bundle_dir: Path) -> None:
    bundle = load_bundle(tiny_bundle_dir, CPU)
    assert isinstance(bundle.manifest, Manifest)
    assert bundle.labels == ["neg", "pos"]
    assert len(bundle.vocab) == bundle.config["vocab_size"]
    assert bundle.session.provider == "CPUExecutionProvider"


@pytest.mark.parametrize("name", ["model.onnx", "vocab.txt", "config.json", "tokenizer.json", "manifest.json"])
def test_load_bundle_rejects_missing_file(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    with pytest.raises(BundleError, match=f"{name}.*(missing|export)"):
        load_bundle(bundle_copy, CPU)


@pytest.mark.parametrize("name", ["model.onnx", "vocab.txt", "config.json", "tokenizer.json", "README.md"])
def test_load_bundle_rejects_tampered_file(bundle_copy: Path, name: str) -> None:
    with open(bundle_copy / name, "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(BundleError, match=f"Checksum mismatch for {name}: expected sha256"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_newer_format_version(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / MANIFEST_FILE, lambda m: m.update(format_version=BUNDLE_FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match="newer than this toolkit reads.*upgrade lstm-onnx"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_manifest_without_key(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / MANIFEST_FILE, lambda m: m.pop("io"))
    with pytest.raises(BundleError, match="lacks the key 'io'"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_warns_when_made_by_newer_toolkit(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / MANIFEST_FILE, lambda m: m["versions"].update(toolkit="99.0.0"))
    with pytest.warns(UserWarning, match="made by lstm-onnx 99.0.0"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_io_names_that_differ_from_model(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / MANIFEST_FILE, lambda m: m["io"]["outputs"][0].update(name="probs"))
    with pytest.raises(BundleError, match=r"has outputs \['logits'\] but .*declares \['probs'\]"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_vocabulary_of_other_size(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "config.json", lambda c: c.update(vocab_size=c["vocab_size"] + 1))
    _reseal(bundle_copy, "config.json")
    with pytest.raises(BundleError, match="vocab.txt has .* tokens but config.json vocab_size is"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_label_count_other_than_logits(bundle_copy: Path) -> None:
    _edit_json(bundle_copy / "config.json", lambda c: c.update(labels=["neg", "mid", "pos"]))
    _reseal(bundle_copy, "config.json")
    with pytest.raises(BundleError, match="outputs 2 logits per text but .* has 3 labels"):
        load_bundle(bundle_copy, CPU)


def test_load_bundle_rejects_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope", CPU)


def _grow_vocab_and_reseal(bundle: Path, file: str, extra: list[str], sizes: tuple[str, ...]) -> int:
    """Append ``extra`` entries to ``file``, record the new size under ``sizes`` of config.json, reseal every file."""
    with open(bundle / file, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{token}\n" for token in extra))
    n = len((bundle / file).read_text(encoding="utf-8").splitlines())
    for key in sizes:
        _edit_json(bundle / "config.json", lambda c, key=key: c["model"].update({key: n}))
    words = len((bundle / VOCAB_FILE).read_text(encoding="utf-8").splitlines())
    _edit_json(bundle / "config.json", lambda c: c.update(vocab_size=words))
    for name in json.loads((bundle / MANIFEST_FILE).read_text())["files"]:
        _reseal(bundle, name)
    return n


def _embedding_in_constant_node(bundle: Path, vocab_file: str = VOCAB_FILE) -> None:
    """Move the lookup table of ``vocab_file``'s ids (one row per entry) from an initializer into a Constant node."""
    import onnx
    from onnx import helper

    model = onnx.load(str(bundle / MODEL_FILE))
    rows = len((bundle / vocab_file).read_text(encoding="utf-8").splitlines())
    gathered = {n.input[0] for n in model.graph.node if n.op_type == "Gather"}
    table = next(i for i in model.graph.initializer if i.name in gathered and i.dims[0] == rows)
    model.graph.initializer.remove(table)
    model.graph.node.insert(0, helper.make_node("Constant", [], [table.name], value=table))
    onnx.save(model, str(bundle / MODEL_FILE))


def test_embedding_moved_into_a_constant_node_is_still_checked(bundle_copy: Path) -> None:
    _embedding_in_constant_node(bundle_copy)
    n = _grow_vocab_and_reseal(bundle_copy, VOCAB_FILE, ["zzextra1", "zzextra2"], ("vocab_size",))
    # Without the check, ORT's Gather fails out of bounds on every text holding one of the new tokens.
    with pytest.raises(BundleError, match=f"vocab.txt has {n} tokens but the embedding table of .* has {n - 2} rows"):
        load_bundle(bundle_copy, CPU)


def test_embedding_computed_by_the_graph_is_refused(bundle_copy: Path) -> None:
    import onnx
    from onnx import helper

    model = onnx.load(str(bundle_copy / MODEL_FILE))
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    table = gather.input[0]
    model.graph.node.insert(0, helper.make_node("Identity", [table], ["copied"]))
    model.graph.node.insert(1, helper.make_node("Add", ["copied", "copied"], ["doubled"]))
    gather.input[0] = "doubled"
    onnx.save(model, str(bundle_copy / MODEL_FILE))
    _reseal(bundle_copy, MODEL_FILE)
    with pytest.raises(BundleError, match=r"embedding table of .* \(input_ids\) is computed by the graph"):
        load_bundle(bundle_copy, CPU)


def test_tagger_character_table_is_checked(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(tiny_tag_bundle_dir, tmp_path / "bundle"))
    _embedding_in_constant_node(bundle, CHAR_VOCAB_FILE)
    n = _grow_vocab_and_reseal(bundle, CHAR_VOCAB_FILE, ["☃", "☄"], ("char_vocab_size",))
    with pytest.raises(BundleError, match=f"chars.txt has {n} characters but the character table of .* has {n - 2}"):
        load_bundle(bundle, CPU)
