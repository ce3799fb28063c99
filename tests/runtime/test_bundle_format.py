"""The bundle's JSON files have one definition (BundleConfig, Manifest) and the session check follows the task."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.bundle_format import BundleConfig, Manifest
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, CLASSIFY_IO, MANIFEST_FILE, TAG_IO
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.session import SessionConfig

CPU = SessionConfig(providers="cpu")


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _edit(bundle: Path, name: str, change: Any) -> None:
    """Change one JSON file of ``bundle`` and record its new checksum, so only that change remains."""
    data = _read(bundle / name)
    change(data)
    (bundle / name).write_text(json.dumps(data), encoding="utf-8")
    if name != MANIFEST_FILE:
        digest = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        manifest = _read(bundle / MANIFEST_FILE)
        manifest["files"][name]["sha256"] = digest
        (bundle / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("fixture", ["tiny_bundle_dir", "tiny_tag_bundle_dir"])
def test_written_files_round_trip_exactly(fixture: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(fixture)
    config, manifest = _read(root / BUNDLE_CONFIG_FILE), _read(root / MANIFEST_FILE)
    assert BundleConfig.from_dict(config, root).to_dict() == config
    assert Manifest.from_dict(manifest, root).to_dict() == manifest


def test_manifest_io_is_the_task_spec(tiny_bundle_dir: Path, tiny_tag_bundle_dir: Path) -> None:
    classify = _read(tiny_bundle_dir / MANIFEST_FILE)
    tag = _read(tiny_tag_bundle_dir / MANIFEST_FILE)
    assert classify["io"] == CLASSIFY_IO.to_manifest(len(_read(tiny_bundle_dir / BUNDLE_CONFIG_FILE)["labels"]))
    assert tag["io"] == TAG_IO.to_manifest(len(_read(tiny_tag_bundle_dir / BUNDLE_CONFIG_FILE)["labels"]))
    # A classifier's config.json keeps the keys it always had: no task key, so older toolkits read it unchanged.
    assert set(_read(tiny_bundle_dir / BUNDLE_CONFIG_FILE)) == {"labels", "tokenizer", "model", "vocab_size", "variant"}


def test_unknown_keys_are_kept_and_written_back(tiny_bundle_dir: Path) -> None:
    config = {**_read(tiny_bundle_dir / BUNDLE_CONFIG_FILE), "future_key": [1, 2]}
    manifest = {**_read(tiny_bundle_dir / MANIFEST_FILE), "signature": "abc"}
    parsed = BundleConfig.from_dict(config, tiny_bundle_dir)
    assert parsed.extra == {"future_key": [1, 2]}
    assert parsed.to_dict() == config
    assert Manifest.from_dict(manifest, tiny_bundle_dir).to_dict() == manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(labels=["only"]), "'labels' must list at least 2"),
        (lambda c: c.update(vocab_size="30"), "'vocab_size' must be an integer"),
        (lambda c: c.update(model=[1]), "'model' must be a JSON object"),
        (lambda c: c.update(task=7), "'task' must be a string"),
        (lambda c: c["tokenizer"].update(lowercase="yes"), "bad 'tokenizer' settings"),
    ],
)
def test_bad_config_is_refused_naming_the_key(bundle_copy: Path, change: Any, message: str) -> None:
    _edit(bundle_copy, BUNDLE_CONFIG_FILE, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy, CPU)


def test_session_is_checked_against_the_task_named_in_the_manifest(bundle_copy: Path) -> None:
    # A classifier graph under a manifest that says "tag" (io block rewritten to match) is refused by the spec.
    _edit(bundle_copy, MANIFEST_FILE, lambda m: m["io"].update(task="tag"))
    with pytest.raises(BundleError, match=r"inputs \['input_ids', 'lengths'\] but a 'tag' model takes"):
        load_bundle(bundle_copy, CPU)


def test_task_disagreement_and_unknown_task_are_refused(bundle_copy: Path, tmp_path: Path) -> None:
    _edit(bundle_copy, BUNDLE_CONFIG_FILE, lambda c: c.update(task="tag"))
    with pytest.raises(BundleError, match="io.task is 'classify' but config.json's task is 'tag'"):
        load_bundle(bundle_copy, CPU)
    _edit(bundle_copy, BUNDLE_CONFIG_FILE, lambda c: c.update(task="translate"))
    _edit(bundle_copy, MANIFEST_FILE, lambda m: m["io"].pop("task"))
    with pytest.raises(BundleError, match="unknown task 'translate'"):
        load_bundle(bundle_copy, CPU)


def test_old_bundle_without_any_task_loads_as_a_classifier(bundle_copy: Path) -> None:
    _edit(bundle_copy, MANIFEST_FILE, lambda m: m["io"].pop("task"))
    bundle = load_bundle(bundle_copy, CPU)
    assert bundle.task == "classify"
    assert bundle.config == _read(bundle_copy / BUNDLE_CONFIG_FILE)
