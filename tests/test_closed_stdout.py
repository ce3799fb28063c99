"""A reader that closes stdout early (`lstm-onnx predict ... | head -1`) ends the command quietly with exit 141."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lstm_onnx.cli import CLOSED_OUTPUT_EXIT, _handles_toolkit_errors


@pytest.mark.parametrize(
    ("bundle", "args"),
    [
        ("tiny_bundle_dir", []),
        ("tiny_bundle_dir", ["--format", "csv"]),
        ("tiny_tag_bundle_dir", ["--format", "conllu"]),
    ],
    ids=["classifier jsonl", "classifier csv", "tagger conllu"],
)
def test_cli_predict_into_a_closed_pipe_exits_141_quietly(
    request: pytest.FixtureRequest, tmp_path: Path, bundle: str, args: list[str]
) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("the big dog sees a red film .\n" * 5000, encoding="utf-8")  # far more than a pipe holds
    command = [sys.executable, "-m", "lstm_onnx", "predict", str(request.getfixturevalue(bundle)), "--file", str(texts)]
    with subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # like `head -1` exiting
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert first.strip()
    assert code == CLOSED_OUTPUT_EXIT == 141
    assert stderr == ""


def test_cli_broken_pipe_of_its_own_keeps_its_traceback() -> None:
    # stdout (pytest's capture file) is open: the broken pipe is a real failure, e.g. to a worker process.
    def command() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        _handles_toolkit_errors(command, "predict", None)()
