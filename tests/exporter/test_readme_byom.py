"""The README's "Bring your own model" examples run as written: the model file, the command and the Python API."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from lstm_onnx.cli import app  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402


def _blocks() -> list[tuple[str, str]]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


def test_readme_byom_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (net_kind, net), (cmd_kind, command), (api_kind, api) = _blocks()[:3]
    assert (net_kind, cmd_kind, api_kind) == ("python", "bash", "python") and net.startswith("# net.py")
    (tmp_path / "net.py").write_text(net, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = shlex.split(command.split("#", 1)[0])
    assert args[:2] == ["lstm-onnx", "export-module"]
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "net-onnx").iterdir()} == {"model.onnx", "parity.json", "parity.txt"}
    assert "Graph made by: lowering" in result.stdout
    monkeypatch.delitem(sys.modules, "net", raising=False)
    printed: list[str] = []
    exec(compile(api, "README.md", "exec"), {"print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert printed == ["lowering passed"]
