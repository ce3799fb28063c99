"""`lstm-onnx package`: a wheel carrying the bundle installs with pip and loads by name, offline."""

from __future__ import annotations

import ast
import base64
import csv
import email.parser
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
from lstm_onnx.runtime.bundle_format import file_digest
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


@pytest.fixture(scope="module")
def target(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model wheel installed by pip into a fresh target directory (use it through PYTHONPATH)."""
    site = tmp_path_factory.mktemp("site")
    installed = _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    assert installed.returncode == 0, installed.stderr
    return site


def _run_beside(target: Path, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_installed_wheel_loads_by_name_offline(target: Path, tmp_path: Path, tiny_model: TextClassifier) -> None:
    run = _run_beside(target, tmp_path, _PREDICT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [p.to_dict() for p in tiny_model.predict(TEXTS)]
    module = _run_beside(target, tmp_path, "import my_model; print(my_model.BUNDLE); print(my_model.load().labels)")
    assert module.returncode == 0, module.stderr
    bundle_path, labels = module.stdout.splitlines()
    assert Path(bundle_path) == target / "my_model" / "bundle"
    assert labels == str(tiny_model.labels)


def test_installed_model_wins_over_a_folder_of_that_name_that_is_no_bundle(
    target: Path, tmp_path: Path, tiny_model: TextClassifier
) -> None:
    (tmp_path / "my_model").mkdir()  # e.g. the project's notes about the model
    (tmp_path / "my_model" / "notes.txt").write_text("not a bundle\n", encoding="utf-8")
    run = _run_beside(target, tmp_path, _PREDICT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [p.to_dict() for p in tiny_model.predict(TEXTS)]


def test_installed_model_shadowed_by_a_local_module_is_one_bundle_error(target: Path, tmp_path: Path) -> None:
    (tmp_path / "my_model.py").write_text("X = 1\n", encoding="utf-8")  # imported first: cwd leads sys.path
    run = _run_beside(target, tmp_path, "import lstm_onnx; lstm_onnx.load('my_model')")
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("lstm_onnx.runtime.errors.BundleError: Installed model 'my_model' cannot be imported")
    assert "shadows it" in last


@pytest.mark.parametrize(
    ("name", "version", "phrase"),
    [
        ("My-Model", "1.0", "lowercase Python identifier"),
        ("class", "1.0", "lowercase Python identifier"),
        ("json", "1.0", "would shadow"),
        ("lstm_onnx", "1.0", "would shadow"),
        ("_", "1.0", "lowercase Python identifier"),
        ("__init__", "1.0", "lowercase Python identifier"),
        ("m" * 65, "1.0", "at most 64 characters"),
        ("numpy", "1.0", "already the installed distribution 'numpy'"),
        ("typing_extensions", "1.0", "already the installed distribution"),
        ("my_model", "one", "not a PEP 440 version"),
        ("my_model", "1" + ".1" * 40, "longer than 64 characters"),
    ],
)
def test_build_model_wheel_rejects_bad_name_or_version(
    tiny_bundle_dir: Path, tmp_path: Path, name: str, version: str, phrase: str
) -> None:
    with pytest.raises(BundleError, match=phrase):
        build_model_wheel(tiny_bundle_dir, tmp_path, name=name, version=version)
    assert list(tmp_path.iterdir()) == []


def test_build_model_wheel_refuses_the_name_of_an_importable_module(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "house_module.py").write_text("X = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    with pytest.raises(BundleError, match="already the importable module 'house_module'"):
        build_model_wheel(tiny_bundle_dir, tmp_path / "dist", name="house_module", version="1.0")
    assert not (tmp_path / "dist").exists()


def test_build_model_wheel_repackages_an_installed_model_of_that_name(
    wheel: Path, tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # my_model 1.0 installed (a wheel is laid out as installed)
    monkeypatch.syspath_prepend(str(site))
    rebuilt = build_model_wheel(tiny_bundle_dir, tmp_path / "dist", name="my_model", version="1.1")
    assert rebuilt.name == "my_model-1.1-py3-none-any.whl"


def test_build_model_wheel_reports_an_unwritable_out_in_one_error(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "dist"
    blocker.write_text("a file where the folder should be\n", encoding="utf-8")
    with pytest.raises(BundleError, match="Cannot write .*my_model-1.0-py3-none-any.whl"):
        build_model_wheel(tiny_bundle_dir, blocker, name="my_model", version="1.0")
    assert [p.name for p in tmp_path.iterdir()] == ["dist"]


def _hostile_copy(bundle: Path, model_name: str, labels: list[str]) -> Path:
    """``bundle`` with another manifest name and other labels, checksums resealed: it loads like any bundle."""
    config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    (bundle / "config.json").write_text(json.dumps({**config, "labels": labels}), encoding="utf-8")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["name"] = model_name
    manifest["files"]["config.json"] = file_digest(bundle / "config.json")
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return bundle


def test_build_model_wheel_keeps_bundle_text_out_of_headers_and_code(bundle_copy: Path, tmp_path: Path) -> None:
    # A label cannot carry a line break any more (the bundle is refused at load); the manifest's name still can.
    name = 'evil"""\nRequires-Dist: evil-dep\nraise SystemExit(3)\n"""'
    bundle = _hostile_copy(bundle_copy, name, ["neg", "pos"])
    wheel = build_model_wheel(bundle, tmp_path, name="hostile", version="1.0")
    with zipfile.ZipFile(wheel) as zf:
        headers = email.parser.HeaderParser().parsestr(zf.read("hostile-1.0.dist-info/METADATA").decode())
        init = zf.read("hostile/__init__.py").decode()
    assert headers.get_all("Requires-Dist") == [f"lstm-onnx>={__version__}"]
    assert "\n" not in headers["Summary"] and "Requires-Dist: evil-dep" in headers["Summary"]
    tree = ast.parse(init)  # the name stays a string: no statement of the module came from the bundle
    assert not any(isinstance(node, ast.Raise) for node in ast.walk(tree))
    model = next(n.value for n in tree.body if isinstance(n, ast.AnnAssign) and ast.unparse(n.target) == "MODEL")
    assert ast.literal_eval(model) == (name, "0.1.0")


def test_build_model_wheel_refuses_a_label_with_a_line_break(bundle_copy: Path, tmp_path: Path) -> None:
    bundle = _hostile_copy(bundle_copy, "sentiment", ["neg\nRequires-Dist: evil-dep", "pos"])
    with pytest.raises(BundleError, match="Label names must be one line without control characters"):
        build_model_wheel(bundle, tmp_path, name="hostile", version="1.0")
    assert not list(tmp_path.glob("*.whl"))


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
