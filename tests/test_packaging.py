"""Packaging: one import namespace, nothing else at the top level, typed, and safe beside other packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lstm_onnx

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "trainer", "exporter", "bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lstm-onnx built as a wheel from this checkout (no dependencies, no build isolation: offline, seconds)."""
    out = tmp_path_factory.mktemp("wheel")
    leftover = not (REPO / "build").exists()  # setuptools stages the wheel in build/: remove it if we made it
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    if leftover:
        shutil.rmtree(REPO / "build", ignore_errors=True)
    (built,) = out.glob("lstm_onnx-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a fresh target directory, beside a package that ships top-level ``cli`` and
    ``runtime`` modules of its own (installed after us, as a careless neighbour would be)."""
    target = tmp_path_factory.mktemp("site")
    neighbour = tmp_path_factory.mktemp("neighbour")
    (neighbour / "runtime").mkdir()
    (neighbour / "runtime" / "__init__.py").write_text("NEIGHBOUR = True\n", encoding="utf-8")
    (neighbour / "cli.py").write_text("def main():\n    return 'neighbour'\n", encoding="utf-8")
    (neighbour / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "careless-neighbour"\nversion = "1.0"\n'
        '[tool.setuptools]\npy-modules = ["cli"]\npackages = ["runtime"]\n',
        encoding="utf-8",
    )
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target)]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=300)
    subprocess.run([*pip, "--no-build-isolation", str(neighbour)], check=True, capture_output=True, timeout=300)
    return target


def _python(code: str, target: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", PACKAGES)
def test_namespace_refuses_second_top_level_name_from_a_checkout(name: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1
    assert f"Import lstm_onnx.{name}, not {name}" in done.stderr


def test_namespace_every_module_loaded_has_one_name() -> None:
    code = (
        "import sys, lstm_onnx.cli, lstm_onnx.runtime.load, lstm_onnx.trainer.config, lstm_onnx.exporter.config\n"
        "import lstm_onnx.bench.suite\n"
        "tops = ('runtime', 'trainer', 'exporter', 'bench', 'cli')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in tops))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_wheel_installs_only_lstm_onnx_at_top_level(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"lstm_onnx", f"lstm_onnx-{lstm_onnx.__version__}.dist-info"}
    shipped = ("py.typed", "__main__.py", "runtime/predictor.py", "bench/suite.py")
    for required in (f"lstm_onnx/{name}" for name in shipped):
        assert required in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_wheel_version_is_the_package_version(wheel: Path) -> None:
    assert wheel.name.startswith(f"lstm_onnx-{lstm_onnx.__version__}-")


def test_neighbour_with_own_cli_and_runtime_breaks_neither_cli_nor_api(
    installed: Path, tiny_bundle_dir: Path, tmp_path: Path
) -> None:
    code = (
        "import runtime, cli\nassert runtime.NEIGHBOUR and cli.main() == 'neighbour'\n"
        "import lstm_onnx\n"
        f"model = lstm_onnx.load({str(tiny_bundle_dir)!r}, providers='cpu')\n"
        "print(model.predict(['a great and moving film'])[0].label)\n"
        "from lstm_onnx.cli import app\n"
        "try:\n    app(['--version'], prog_name='lstm-onnx')\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
    )
    done = _python(code, installed, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] in ("neg", "pos")
    assert lines[1] == f"lstm-onnx {lstm_onnx.__version__}"


def test_python_dash_m_runs_the_cli(installed: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "lstm_onnx", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "predict" in done.stdout and "--install-completion" in done.stdout


def test_installed_package_is_typed_for_mypy(installed: Path, tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    script = tmp_path / "embed.py"
    script.write_text(
        "import lstm_onnx\nfrom lstm_onnx.runtime.errors import BundleError\n"
        "version: str = lstm_onnx.__version__\nwrong: int = BundleError('x')\n",
        encoding="utf-8",
    )
    # mypy reads the target python's sys.path (PYTHONPATH included) as installed packages, which it types only
    # when they carry py.typed; without it the imports are reported as untyped.
    env = {"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-executable",
            sys.executable,
            str(script),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'expression has type "BundleError", variable has type "int"' in done.stdout
    assert "Found 1 error" in done.stdout
