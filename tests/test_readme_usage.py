"""The README's Usage section: only options the CLI accepts, and the files a run directory and a bundle hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from lstm_onnx.cli import app
from tests.conftest import REPO_ROOT


def _usage_lines() -> dict[str, str]:
    """Each command of the README's Usage block with its (continued) option text."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Usage", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        if line.startswith("lstm-onnx "):
            current = line.split()[1]
            commands[current] = line
        elif line.strip() and current:
            commands[current] += " " + line
    return commands


def _accepted(command: str) -> set[str]:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {opt for param in click_command.params for opt in (*param.opts, *param.secondary_opts)}


USAGE = _usage_lines()


def test_readme_usage_lists_every_command() -> None:
    assert set(USAGE) >= {"train", "export", "verify", "predict", "evaluate", "info", "bench", "package", "relabel"}


@pytest.mark.parametrize("command", sorted(USAGE))
def test_readme_usage_options_exist(command: str) -> None:
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", USAGE[command]))
    assert named <= _accepted(command), f"README names options `lstm-onnx {command}` does not accept"


def _listed(sentence_start: str) -> set[str]:
    """The backticked file names of the README sentence starting with ``sentence_start``."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    sentence = re.split(r";|\.\s", readme.split(sentence_start, 1)[1], maxsplit=1)[0]
    return set(re.findall(r"`([\w./]+\.\w+)`", sentence))


def test_readme_names_the_run_directory_files(tiny_run_dir: Path) -> None:
    written = {str(p.relative_to(tiny_run_dir)) for p in tiny_run_dir.rglob("*") if p.is_file()}
    assert _listed("`train` writes a run directory:") == written


def test_readme_names_the_bundle_files(tiny_bundle_dir: Path) -> None:
    assert _listed("`export` writes a\nbundle:") == {p.name for p in tiny_bundle_dir.iterdir()}
