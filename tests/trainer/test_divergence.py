"""A run whose loss stops being a number stops with one line, and no NaN is ever written into a run's JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.errors import TrainingError
from lstm_onnx.runtime.json_text import dump_json
from lstm_onnx.trainer.divergence import require_finite_record
from lstm_onnx.trainer.presets import get_preset
from lstm_onnx.trainer.progress import NullProgress
from lstm_onnx.trainer.run_dir import atomic_write_json
from lstm_onnx.trainer.tag_cli import train_tag
from lstm_onnx.trainer.train import train
from tests.conftest import corpus_texts, make_corpus

# Adam's steps are about lr in size: at 1e37 (no clipping) the tiny model's logits overflow in the first epoch.
_DIVERGING = {"lr": 1e37, "clip_norm": 0.0}


def test_train_stops_at_non_finite_loss(tmp_path: Path) -> None:
    preset = get_preset("tiny", epochs=2, **_DIVERGING)
    with pytest.raises(TrainingError, match=r"Training diverged: the loss is (inf|nan) at epoch 1, batch \d+"):
        train(corpus_texts(make_corpus()), tmp_path / "run", preset.model, preset.train)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_train_tagger_stops_at_non_finite_loss(tmp_path: Path, tiny_tag_data: Path) -> None:
    with pytest.raises(TrainingError, match=r"Training diverged: the loss is (inf|nan) at epoch 1"):
        train_tag(tiny_tag_data, tmp_path / "run", "tiny", _DIVERGING, None, False, None, "upos", NullProgress())
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_train_command_nan_vectors_exit_1_one_line(tmp_path: Path) -> None:
    rows = make_corpus()
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("film nan 0.1 0.2 0.3\nmovie 1e39 0.1 0.2 0.3\n", encoding="utf-8")
    args = ["train", str(data), "--preset", "tiny", "--out", str(tmp_path / "run"), "--embeddings", str(vectors)]
    args += ["--test-data", str(data), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "not a finite float32 number" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_require_finite_record_names_the_number(value: float) -> None:
    with pytest.raises(TrainingError, match=r"history\[1\]\.val_loss of epoch 2 is not a finite number"):
        require_finite_record({"history": [{"val_loss": 0.5}, {"val_loss": value}]}, "epoch 2")


def test_dump_json_refuses_nan() -> None:
    with pytest.raises(ValueError, match=r"non-finite number\(s\) at \['test.loss'\]"):
        dump_json({"test": {"loss": math.nan, "n": 3}})


def test_atomic_write_json_never_writes_nan(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"before": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="non-finite"):
        atomic_write_json(path, {"loss": math.inf})
    assert json.loads(path.read_text(encoding="utf-8")) == {"before": 1} and len(list(tmp_path.iterdir())) == 1
