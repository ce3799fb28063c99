"""The BiLSTM tagger: packed and unpacked forwards agree, padding never matters, the loss falls, runs resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.tag_config import TaggerConfig
from lstm_onnx.trainer.tag_run import load_tag_run, run_task
from lstm_onnx.trainer.tagger_model import BiLSTMTagger
from tests.conftest import InterruptAt


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 7])
    ids = torch.randint(2, 20, (3, 7), generator=g)
    chars = torch.randint(2, 15, (3, 7, 6), generator=g)
    for b, n in enumerate(lengths.tolist()):
        ids[b, n:] = 0
        chars[b, n:] = 0
    chars[1, :, 3:] = 0  # row 1's tokens have 3 characters: W=6 is padding for them
    return ids, chars, lengths


@pytest.fixture()
def model() -> BiLSTMTagger:
    torch.manual_seed(0)
    config = TaggerConfig(
        vocab_size=20,
        char_vocab_size=15,
        num_labels=4,
        embedding_dim=6,
        char_embedding_dim=3,
        char_filters=5,
        hidden_size=7,
        num_layers=2,
    )
    return BiLSTMTagger(config).eval()


def test_tagger_unpacked_equals_packed(model: BiLSTMTagger) -> None:
    ids, chars, lengths = _batch()
    with torch.no_grad():
        packed, unpacked = model(ids, chars, lengths), model.forward_unpacked(ids, chars, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(packed[b, :n], unpacked[b, :n], atol=1e-5, rtol=1e-4)


def test_tagger_sentence_alone_equals_padded_batch(model: BiLSTMTagger) -> None:
    ids, chars, lengths = _batch()
    with torch.no_grad():
        batch = model(ids, chars, lengths)
        alone = model(ids[1:2, :2], chars[1:2, :2, :3], lengths[1:2])
    # Alone it is also narrower (W=3, not 6): a token's features do not depend on the batch's W either.
    torch.testing.assert_close(alone[0], batch[1, :2], atol=1e-5, rtol=0)


def test_tag_run_trains_and_records_metrics(tiny_tag_run_dir: Path) -> None:
    metrics = json.loads((tiny_tag_run_dir / "metrics.json").read_text())
    losses = [r["train_loss"] for r in metrics["history"]]
    assert losses[-1] < losses[0] / 2
    assert metrics["test"]["accuracy"] > 0.9
    assert set(metrics["history"][0]["val_per_tag"]) == {"ADJ", "DET", "NOUN", "PUNCT", "VERB"}
    assert run_task(tiny_tag_run_dir) == "tag"
    run = load_tag_run(tiny_tag_run_dir)
    assert run.labels == ["ADJ", "DET", "NOUN", "PUNCT", "VERB"]


def test_tag_run_refuses_existing_run(tiny_tag_run_dir: Path, tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    run = Path(shutil.copytree(tiny_tag_run_dir, tmp_path / "run"))
    with pytest.raises(BundleError, match="already holds a training run"):
        train_tag(tiny_tag_data, run, "tiny", {}, None, False, None, "upos", NullProgress())


def test_tag_run_resume_extends_to_same_result(tiny_tag_run_dir: Path, tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    short = tmp_path / "short"
    train_tag(tiny_tag_data, short, "tiny", {"epochs": 6}, None, False, None, "upos", NullProgress())
    resumed = train_tag(tiny_tag_data, short, "tiny", {"epochs": 12}, None, True, None, "upos", NullProgress())
    full = json.loads((tiny_tag_run_dir / "metrics.json").read_text())
    assert [r["val_accuracy"] for r in resumed.history] == [r["val_accuracy"] for r in full["history"]]
    assert resumed.test["accuracy"] == full["test"]["accuracy"]


def test_cli_train_task_tag_then_export(tiny_tag_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lstm_onnx.cli import app

    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", str(tiny_tag_data), "--task", "tag", "--preset", "tiny", "--out", str(run), "--epochs", "2", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["best_epoch"] in (1, 2)
    result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("fp32 bundle:")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["task"] == "tag"


def test_tag_run_interrupted_in_first_epoch_resumes_from_scratch(tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.checkpoint import state_path
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    run, options = tmp_path / "run", {"epochs": 2}
    with pytest.raises(KeyboardInterrupt):
        train_tag(tiny_tag_data, run, "tiny", options, None, False, None, "upos", InterruptAt(1))
    assert (run / "config.json").is_file() and not state_path(run).exists()
    with pytest.raises(BundleError, match="pass --resume"):
        train_tag(tiny_tag_data, run, "tiny", options, None, False, None, "upos", NullProgress())
    resumed = train_tag(tiny_tag_data, run, "tiny", options, None, True, None, "upos", NullProgress())
    full = train_tag(tiny_tag_data, tmp_path / "full", "tiny", options, None, False, None, "upos", NullProgress())
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert resumed.test == full.test


def test_tag_run_resume_without_its_test_file_refused(tiny_tag_data: Path, tmp_path: Path) -> None:
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    run = tmp_path / "run"
    train_tag(tiny_tag_data, run, "tiny", {"epochs": 1}, None, False, None, "upos", NullProgress())
    no_test = tmp_path / "no-test"
    no_test.mkdir()
    for split in ("train", "dev"):
        shutil.copy(tiny_tag_data / f"tiny-{split}.conllu", no_test)
    with pytest.raises(BundleError, match=r"started with test data 'tiny-test\.conllu'.*no test metrics"):
        train_tag(no_test, run, "tiny", {"epochs": 2}, None, True, None, "upos", NullProgress())
    assert json.loads((run / "metrics.json").read_text())["test"] is not None  # the run is left as it was
