"""`lstm-onnx package`: a wheel carrying the bundle installs with pip and loads by name, offline."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx import __version__
from lstm_onnx.cli import app
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.wheel import build_model_wheel

TEXTS = ["A wonderful, moving film.", "Boring and awful."]
_PREDICT = (
    "import json, lstm_onnx; "
    f"print(json.dumps([p.to_dict() for p in lstm_onnx.load('my_model', providers='cpu').predict({TEXTS!r})]))"
)


@pytest.fixture(scope="module")
def wheel(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_wheel(tiny_bundle_dir, tmp_path_factory.mktemp("dist"), name="my_model", version="1.0")


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env, check=False)


def test_build_model_wheel_layout_and_record(wheel: Path) -> None:
    assert wheel.name == "my_model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"my_model/__init__.py", "my_model/bundle/model.onnx", "my_model/bundle/manifest.json"} <= names
        metadata = zf.read("my_model-1.0.dist-info/METADATA").decode()
        assert f"Requires-Dist: lstm-onnx>={__version__}" in metadata
        assert "Name: my_model" in metadata and 'lstm_onnx.load("my_model")' in metadata
        assert zf.read("my_model-1.0.dist-info/entry_points.txt").decode() == (
            "[lstm_onnx.models]\nmy_model = my_model:BUNDLE\n"
        )
        rows = list(csv.reader(io.StringIO(zf.read("my_model-1.0.dist-info/RECORD").decode())))
        assert {row[0] for row in rows} == names
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))


def test_installed_wheel_loads_by_name_offline(wheel: Path, tmp_path: Path, tiny_model: TextClassifier) -> None:
    target = tmp_path / "site"
    installed = _pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", _PREDICT], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [p.to_dict() for p in tiny_model.predict(TEXTS)]
    module = subprocess.run(
        [sys.executable, "-c", "import my_model; print(my_model.BUNDLE); print(my_model.load().labels)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.returncode == 0, module.stderr
    bundle_path, labels = module.stdout.splitlines()
    assert Path(bundle_path) == target / "my_model" / "bundle"
    assert labels == str(tiny_model.labels)


@pytest.mark.parametrize(
    ("name", "version", "phrase"),
    [
        ("My-Model", "1.0", "lowercase Python identifier"),
        ("class", "1.0", "lowercase Python identifier"),
        ("json", "1.0", "would shadow"),
        ("lstm_onnx", "1.0", "would shadow"),
        ("my_model", "one", "not a PEP 440 version"),
    ],
)
def test_build_model_wheel_rejects_bad_name_or_version(
    tiny_bundle_dir: Path, tmp_path: Path, name: str, version: str, phrase: str
) -> None:
    with pytest.raises(BundleError, match=phrase):
        build_model_wheel(tiny_bundle_dir, tmp_path, name=name, version=version)
    assert list(tmp_path.iterdir()) == []


def test_build_model_wheel_normalises_version_and_defaults_name(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    wheel = build_model_wheel(tiny_bundle_dir, tmp_path, version="1.0.0-beta")
    assert wheel.name == "sentiment_bilstm-1.0.0b0-py3-none-any.whl"


def test_package_command_never_overwrites_without_force(wheel: Path, tiny_bundle_dir: Path) -> None:
    before = wheel.read_bytes()
    args = ["package", str(tiny_bundle_dir), "--out", str(wheel.parent), "--name", "my_model", "--version", "1.0"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "already exists; pass --force" in refused.stderr
    forced = CliRunner().invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.strip() == str(wheel)
    assert wheel.read_bytes() == before  # same bundle, same wheel, byte for byte
    assert [p.name for p in wheel.parent.iterdir()] == [wheel.name]


def test_package_command_refuses_a_broken_bundle(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "vocab.txt").write_text("changed\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["package", str(bundle_copy), "--out", str(tmp_path / "dist")])
    assert result.exit_code == 1
    assert "Checksum mismatch for vocab.txt" in result.stderr
    assert not (tmp_path / "dist").exists()


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv(wheel: Path, tmp_path: Path, tiny_model: TextClassifier) -> None:
    """pip installs the wheel, its lstm-onnx requirement included, into a fresh venv, which then loads it by name.

    The fresh venv sees this checkout's lstm_onnx and its dependencies through a .pth file adding the dev venv's
    site-packages (nothing is downloaded: --no-index), so pip resolves Requires-Dist: lstm-onnx offline.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir (not a bare path line) so the dev venv's own .pth files, the editable install's among them, run too.
    dev_site = sysconfig.get_paths()["purelib"]
    Path(site, "dev-venv.pth").write_text(f"import site; site.addsitedir({dev_site!r})\n", encoding="utf-8")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", str(wheel)], capture_output=True, text=True, env=env
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    run = subprocess.run(
        [str(python), "-c", _PREDICT], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [p.to_dict() for p in tiny_model.predict(TEXTS)]
