"""Outputs that cannot be written, and runs that cannot be resumed: one line, exit 1, nothing half-written.

A full disk is simulated where the toolkit writes (``OSError(ENOSPC)`` from the write itself); ``/proc`` is a real
parent that cannot hold files, ``/dev/full`` a real full stdout.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.errors import BundleError, WriteError
from lstm_onnx.trainer.checkpoint import load_state, state_path
from lstm_onnx.trainer.presets import get_preset
from lstm_onnx.trainer.train import train
from tests.conftest import corpus_texts, make_corpus

runner = CliRunner()
PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").is_dir(), reason="no /proc on this system")


def _disk_full_at(monkeypatch: pytest.MonkeyPatch, name: str, *, after: int = 0, error: int = errno.ENOSPC) -> None:
    """Make the run's atomic writes of files called ``name`` fail with ``error`` (ENOSPC: a full disk), after ``after``
    successful ones."""
    from lstm_onnx.trainer import checkpoint, plot, run_dir

    real = run_dir.atomic_write_bytes
    done = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        if Path(path).name == name:
            done["n"] += 1
            if done["n"] > after:
                raise OSError(error, "No space left on device" if error == errno.ENOSPC else "Read-only file system")
        real(path, data)

    for module in (run_dir, checkpoint, plot):
        monkeypatch.setattr(module, "atomic_write_bytes", write)


def _train(out: Path, epochs: int = 2, resume: bool = False) -> Any:
    preset = get_preset("tiny", epochs=epochs)
    data, test = corpus_texts(make_corpus()), corpus_texts(make_corpus(16, seed=1))
    return train(data, out, preset.model, preset.train, test_data=test, resume=resume)


def _one_line_error(result: Any, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ train
def test_train_disk_full_before_the_first_checkpoint_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full_at(monkeypatch, "model.safetensors")
    with pytest.raises(WriteError, match=r"Cannot write .*run: No space left on device.*Nothing of the run was kept"):
        _train(tmp_path / "run")
    assert not (tmp_path / "run").exists()  # it was a half-written run: config, vocab and rules, no weights
    monkeypatch.undo()
    assert _train(tmp_path / "run").test is not None  # the same command, once there is room


def test_train_disk_full_after_a_checkpoint_keeps_a_run_resume_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full_at(monkeypatch, "metrics.json", after=1)  # epoch 1 is written whole; epoch 2's metrics are not
    with pytest.raises(WriteError, match=r"No space left on device.*`--resume` continues it"):
        _train(tmp_path / "run")
    assert load_state(tmp_path / "run")["epoch"] >= 1
    assert not [p for p in (tmp_path / "run").rglob("*") if p.name.startswith(".")]  # no temporary file left
    monkeypatch.undo()
    resumed = _train(tmp_path / "run", resume=True)
    assert resumed.history == _train(tmp_path / "full").history


def test_train_read_only_file_system_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full_at(monkeypatch, "config.json", error=errno.EROFS)
    with pytest.raises(WriteError, match=r"Read-only file system.*the file system is read-only"):
        _train(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_train_command_disk_full_exit_1_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in make_corpus()), encoding="utf-8")
    _disk_full_at(monkeypatch, "state.pt")
    args = ["train", str(data), "--preset", "tiny", "--out", str(tmp_path / "run"), "--test-data", str(data), "-q"]
    _one_line_error(runner.invoke(app, args), "No space left on device", "Nothing of the run was kept")
    assert not (tmp_path / "run").exists()


@needs_proc
def test_train_into_proc_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"Cannot write /proc/lstm-onnx-run: .*cannot hold files"):
        _train(PROC / "lstm-onnx-run")


def test_train_out_onto_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder", encoding="utf-8")
    with pytest.raises(BundleError, match="is a file; give a directory for the run"):
        _train(tmp_path / "run")
    assert (tmp_path / "run").read_text(encoding="utf-8") == "not a folder"


# ------------------------------------------------------------------ train --resume after config.json was edited
def _edited(run: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    edit(config)
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "shown"),
    [
        (lambda c: c["model"].update(hidden_size=16), "model.hidden_size: 8 → 16"),  # was a size-mismatch traceback
        (lambda c: c["model"].update(vocab_size=5), "model.vocab_size"),
        (lambda c: c.update(labels=["neg", "pos", "mixed"]), "labels: ['neg', 'pos'] → ['neg', 'pos', 'mixed']"),
        (lambda c: c["tokenizer"].update(lowercase=False), "tokenizer.lowercase: True → False"),  # went on silently
        (lambda c: c["model"].pop("vocab_size"), "model.vocab_size"),
    ],
)
def test_resume_after_config_was_edited_is_one_line(tmp_path: Path, edit: Any, shown: str) -> None:
    _train(tmp_path / "run", epochs=1)
    _edited(tmp_path / "run", edit)
    with pytest.raises(BundleError, match=rf"config.json was edited since the last checkpoint \(.*{re.escape(shown)}"):
        _train(tmp_path / "run", epochs=2, resume=True)
    assert load_state(tmp_path / "run")["epoch"] == 1  # refused before anything ran


def test_resume_of_an_older_checkpoint_with_an_edited_config_is_one_line(tmp_path: Path) -> None:
    _train(tmp_path / "run", epochs=1)
    state = load_state(tmp_path / "run")
    del state["run_settings"]  # as checkpoints written before the settings were recorded
    torch.save(state, state_path(tmp_path / "run"))
    _edited(tmp_path / "run", lambda c: c["model"].update(hidden_size=16))
    with pytest.raises(BundleError, match=r"its checkpoint does not fit its config.json \(.*size mismatch"):
        _train(tmp_path / "run", epochs=2, resume=True)


def test_tagging_resume_after_config_was_edited_is_one_line(tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    run = tmp_path / "run"
    train_tag(tiny_tag_data, run, "tiny", {"epochs": 1}, None, False, None, "upos", NullProgress())
    _edited(run, lambda c: c["model"].update(hidden_size=c["model"]["hidden_size"] * 2))
    with pytest.raises(BundleError, match=r"config.json was edited since the last checkpoint \(model.hidden_size"):
        train_tag(tiny_tag_data, run, "tiny", {"epochs": 2}, None, True, None, "upos", NullProgress())


# ------------------------------------------------------------------ export
def _disk_full_copy(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``shutil.copyfile`` into a bundle's staging directory fails with ENOSPC for files called ``name``."""
    real = shutil.copyfile

    def copy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(dst).name == name and Path(dst).parent.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copy)


def test_export_disk_full_is_one_line_and_leaves_nothing(
    tiny_run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full_copy(monkeypatch, "vocab.txt")
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["export", str(tiny_run_dir), "--out", str(out / "bundle")])
    _one_line_error(result, "Cannot write", "No space left on device", "vocab.txt")
    assert list(out.iterdir()) == []  # no bundle, no work or staging directory


@needs_proc
def test_export_into_proc_is_one_line(tiny_run_dir: Path) -> None:
    result = runner.invoke(app, ["export", str(tiny_run_dir), "--out", "/proc/lstm-onnx-bundle"])
    _one_line_error(result, "Cannot write /proc/lstm-onnx-bundle", "cannot hold files")


# ------------------------------------------------------------------ relabel
def test_relabel_disk_full_is_one_line_and_leaves_nothing(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full_copy(monkeypatch, "model.onnx")
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["relabel", str(tiny_bundle_dir), "--label", "neg=negative", "--out", str(out / "b")])
    _one_line_error(result, "Cannot write", "No space left on device")
    assert list(out.iterdir()) == []


@needs_proc
def test_relabel_into_proc_is_one_line(tiny_bundle_dir: Path) -> None:
    result = runner.invoke(app, ["relabel", str(tiny_bundle_dir), "--label", "neg=n", "--out", "/proc/lstm-onnx-b"])
    _one_line_error(result, "Cannot write /proc/lstm-onnx-b", "cannot hold files")


# ------------------------------------------------------------------ predict and score
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("fmt", ["jsonl", "table", "csv"])
def test_predict_into_a_full_disk_is_one_line(tiny_bundle_dir: Path, tmp_path: Path, fmt: str) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"a great film number {i}\n" for i in range(2000)), encoding="utf-8")
    with open("/dev/full", "w") as full:  # every write: ENOSPC, as a full disk under `> file`
        done = subprocess.run(
            [sys.executable, "-m", "lstm_onnx", "predict", str(tiny_bundle_dir), "--file", str(texts), "--format", fmt],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        "error: Cannot write the results to standard output: No space left on device; free some space where it goes, "
        "or send it elsewhere. The output is incomplete.\n"
    )


def _jsonl(path: Path, n: int = 30) -> Path:
    path.write_text("".join(json.dumps({"text": f"great film {i}"}) + "\n" for i in range(n)), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["score", "predict"])
def test_score_output_onto_a_folder_or_into_a_missing_one_is_one_line(
    tiny_bundle_dir: Path, tmp_path: Path, command: str
) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    engine = ["--engine", "local"] if command == "predict" else []
    base = [command, str(tiny_bundle_dir), "--file", str(source), *engine, "--output"]
    _one_line_error(runner.invoke(app, [*base, str(tmp_path)]), "is a folder; give the path of the .jsonl file")
    missing = tmp_path / "nope" / "out.jsonl"
    _one_line_error(runner.invoke(app, [*base, str(missing)]), "the folder", "does not exist")
    assert not missing.parent.exists()


@needs_proc
def test_score_into_proc_is_one_line(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    result = runner.invoke(app, ["score", str(tiny_bundle_dir), "--file", str(source), "--output", "/proc/o.jsonl"])
    _one_line_error(result, "Cannot write /proc/o.jsonl", "cannot hold files")


def test_score_disk_full_is_one_line_and_leaves_nothing(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lstm_onnx.runtime.batch_scoring as scoring

    class FullFile:
        def __init__(self, path: Any, *args: Any, **kwargs: Any) -> None:
            self.file = open(path, *args, **kwargs)  # noqa: SIM115 - closed in __exit__

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scoring, "open", FullFile, raising=False)
    source = _jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(
        app, ["score", str(tiny_bundle_dir), "--file", str(source), "--output", str(out / "o.jsonl")]
    )
    _one_line_error(result, f"Cannot write {out / 'o.jsonl'}: No space left on device")
    assert list(out.iterdir()) == []
