"""lstm_onnx.load: one call from a bundle path or an installed model name to the model for the bundle's task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lstm_onnx
from lstm_onnx.runtime.errors import BundleError, ConfigError
from lstm_onnx.runtime.load import resolve_bundle
from lstm_onnx.runtime.predictor import TextClassifier

REPO = Path(__file__).resolve().parents[2]


def test_load_returns_the_classifier_for_a_classification_bundle(tiny_bundle_dir: Path) -> None:
    model = lstm_onnx.load(tiny_bundle_dir, providers="cpu")
    assert isinstance(model, TextClassifier)
    assert model.predict(["a great and moving film"])[0].label in ("neg", "pos")


def test_load_accepts_a_path_given_as_str(tiny_bundle_dir: Path) -> None:
    assert lstm_onnx.load(str(tiny_bundle_dir), providers="cpu").labels == ["neg", "pos"]


def test_load_unknown_name_lists_installed_models_and_the_fix() -> None:
    with pytest.raises(BundleError, match="no installed model of that name.*lstm-onnx package"):
        resolve_bundle("no_such_model_here")


@pytest.mark.parametrize("name", ["", "  "])
def test_load_refuses_an_empty_name(name: str, tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tiny_bundle_dir)  # "" would otherwise mean the working directory, here a bundle
    with pytest.raises(BundleError, match="names no bundle"):
        resolve_bundle(name)


def test_load_rejects_a_non_path(tiny_bundle_dir: Path) -> None:
    with pytest.raises(TypeError, match="path or an installed model name"):
        resolve_bundle(42)  # type: ignore[arg-type]


def test_import_lstm_onnx_loads_no_onnxruntime() -> None:
    code = "import sys, lstm_onnx; print(lstm_onnx.__version__, 'onnxruntime' in sys.modules, 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [lstm_onnx.__version__, "False", "False"]


@pytest.mark.parametrize("entry", ["api", "cli"])
def test_without_onnxruntime_first_use_names_both_extras(entry: str, tiny_bundle_dir: Path, tmp_path: Path) -> None:
    block = "import sys; sys.modules['onnxruntime'] = None\n"
    if entry == "api":
        code = block + f"import lstm_onnx\nlstm_onnx.load({str(tiny_bundle_dir)!r})\n"
    else:
        code = block + f"from lstm_onnx.cli import app\napp(['predict', {str(tiny_bundle_dir)!r}, 'great film'])\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    assert "lstm-onnx[cpu]" in done.stderr and "lstm-onnx[gpu]" in done.stderr
    if entry == "cli":  # one line, no traceback
        assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: ONNX Runtime is not installed")


def test_load_refuses_a_model_name_two_installed_packages_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two distributions on sys.path, each registering "twin_model" under the models entry-point group.
    for dist in ("alpha_models", "beta_models"):
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[lstm_onnx.models]\ntwin_model = {dist}:BUNDLE\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match=r"registered by 2 packages: alpha_models:BUNDLE .*beta_models:BUNDLE"):
        resolve_bundle("twin_model")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        # Just over the ceiling: 10**6 made ORT build a million threads (22.7 GB before it was killed).
        ("threads", 257, r"threads must be an int in 1\.\.256, got 257"),
        ("threads", 0, r"threads must be an int in 1\.\.256"),
        ("batch_size", 10**9, r"batch_size must be an int in 1\.\.65,536"),
        ("max_chars", 10**12, r"max_chars must be an int in 1\.\.10,000,000 or None"),
        ("max_length", 10**12, r"max_length must be an int in 1\.\.10,000,000 or None"),
    ],
)
def test_load_bounds_every_resource_option(tiny_bundle_dir: Path, option: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lstm_onnx.load(tiny_bundle_dir, providers="cpu", **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(("option", "value"), [("threads", 257), ("batch_size", 10**9), ("max_chars", 10**12)])
def test_load_bounds_a_taggers_resource_options(tiny_tag_bundle_dir: Path, option: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"{option} must be an int in 1"):
        lstm_onnx.load(tiny_tag_bundle_dir, providers="cpu", **{option: value})  # type: ignore[arg-type]


def test_load_refuses_a_bundle_whose_max_chars_is_unbounded(bundle_copy: Path) -> None:
    from lstm_onnx.runtime.bundle import Manifest
    from lstm_onnx.runtime.bundle_format import seal_manifest

    config = json.loads((bundle_copy / "config.json").read_text(encoding="utf-8"))
    config["tokenizer"]["max_chars"] = 10**15  # every line of input would be read whole
    (bundle_copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    manifest = json.loads((bundle_copy / "manifest.json").read_text(encoding="utf-8"))
    seal_manifest(bundle_copy, Manifest.from_dict(manifest, bundle_copy / "manifest.json"))
    with pytest.raises(BundleError, match=r"config.json: bad 'tokenizer' settings: max_chars must be an int in 1\.\."):
        lstm_onnx.load(bundle_copy, providers="cpu")


@pytest.mark.parametrize(("option", "value"), [("threads", 10**6), ("batch_size", 10**9), ("max_chars", 10**12)])
def test_batch_predictor_bounds_its_options_before_any_worker_starts(
    tiny_bundle_dir: Path, option: str, value: int
) -> None:
    from lstm_onnx.runtime.batch_predictor import BatchPredictor

    with pytest.raises(ConfigError, match=f"{option} must be an int in 1"):
        BatchPredictor(tiny_bundle_dir, **{option: value})  # type: ignore[arg-type]
