"""trainer.train: loss falls, seeded reproducibility, resume, run directory contents, checkpoint safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lstm_onnx.runtime.errors import BundleError, ConfigError, DataError
from lstm_onnx.trainer.checkpoint import load_state, state_path
from lstm_onnx.trainer.presets import get_preset
from lstm_onnx.trainer.run_dir import load_run
from lstm_onnx.trainer.train import train
from tests.conftest import InterruptAt, corpus_texts, make_corpus


def _train(out: Path, epochs: int = 3, resume: bool = False, seed: int = 0, **overrides: object):  # type: ignore[no-untyped-def]
    preset = get_preset("tiny", epochs=epochs, seed=seed, **overrides)
    return train(
        corpus_texts(make_corpus()),
        out,
        preset.model,
        preset.train,
        test_data=corpus_texts(make_corpus(16, seed=1)),
        resume=resume,
    )


def _without_timing(metrics: dict) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in metrics.items() if k not in ("info", "epoch_seconds")}


def test_train_loss_falls_on_separable_corpus(tmp_path: Path) -> None:
    result = _train(tmp_path / "run", epochs=6)
    assert result.history[-1]["train_loss"] < 0.8 * result.history[0]["train_loss"]


def test_train_same_seed_same_metrics(tmp_path: Path) -> None:
    first, second = _train(tmp_path / "a"), _train(tmp_path / "b")
    assert first.history == second.history
    assert first.test == second.test


def test_train_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    _train(tmp_path / "full", epochs=2)
    _train(tmp_path / "split", epochs=1)
    _train(tmp_path / "split", epochs=2, resume=True)
    full, split = (
        load_file(str(tmp_path / "full/model.safetensors")),
        load_file(str(tmp_path / "split/model.safetensors")),
    )
    assert full.keys() == split.keys()
    assert all(torch.equal(full[k], split[k]) for k in full)
    read = lambda p: _without_timing(json.loads((p / "metrics.json").read_text()))  # noqa: E731
    assert read(tmp_path / "full") == read(tmp_path / "split")


def test_train_run_dir_is_complete_and_loadable(tiny_run_dir: Path) -> None:
    names = {p.name for p in tiny_run_dir.iterdir()}
    assert {"config.json", "vocab.txt", "model.safetensors", "metrics.json", "curves.png", "checkpoint"} <= names
    config = json.loads((tiny_run_dir / "config.json").read_text())
    assert set(config) == {"model", "train", "tokenizer", "labels", "data", "toolkit_version"}
    assert config["data"]["train_texts"] > 0 and config["data"]["train"]
    run = load_run(tiny_run_dir)
    assert run.labels == ["neg", "pos"]
    assert (run.model_config.embedding_dim, run.model_config.hidden_size) == (8, 8)
    metrics = json.loads((tiny_run_dir / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix"} <= set(metrics["test"])
    assert not list(tiny_run_dir.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "vocab.txt", "metrics.json", "curves.png"])
def test_train_run_files_are_readable_by_others(tiny_run_dir: Path, name: str) -> None:
    assert (tiny_run_dir / name).stat().st_mode & 0o777 == 0o644


def test_train_refuses_existing_run_without_resume(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = shutil.copytree(tiny_run_dir, tmp_path / "run")
    with pytest.raises(BundleError, match="already holds a training run; pass --resume"):
        _train(run)


def test_train_resume_refuses_changed_settings(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = shutil.copytree(tiny_run_dir, tmp_path / "run")
    with pytest.raises(BundleError, match=r"setting\(s\) \['lr'\] differ"):
        _train(run, epochs=9, resume=True, lr=0.5)


def test_train_resume_without_checkpoint_raises(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="nothing to resume"):
        _train(tmp_path / "none", resume=True)


def test_load_state_refuses_pickled_objects(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = shutil.copytree(tiny_run_dir, tmp_path / "run")
    state = torch.load(state_path(run), weights_only=True)
    state["payload"] = Path("/etc/passwd")  # an arbitrary object: needs unpickling code to rebuild
    torch.save(state, state_path(run))
    with pytest.raises(BundleError, match="holds more than weights and plain data"):
        load_state(run)


def test_load_state_refuses_garbage(tmp_path: Path) -> None:
    path = state_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x02garbage, not a checkpoint")
    with pytest.raises(BundleError, match=str(path.name)):
        load_state(tmp_path)


def test_train_rejects_unknown_test_label(tmp_path: Path) -> None:
    preset = get_preset("tiny")
    test = corpus_texts([("fine", "meh")], "test.jsonl")
    with pytest.raises(DataError, match=r"\['meh'\] not in the label set \['neg', 'pos'\]"):
        train(corpus_texts(make_corpus()), tmp_path / "r", preset.model, preset.train, test_data=test)


def test_train_cuda_requested_without_gpu_raises(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(DataError, match="no CUDA device"):
        _train(tmp_path / "r", device="cuda")


def test_train_interrupted_mid_epoch_leaves_whole_files_and_resumes(tmp_path: Path) -> None:
    preset = get_preset("tiny", epochs=3)
    data, test = corpus_texts(make_corpus()), corpus_texts(make_corpus(16, seed=1))
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(data, run, preset.model, preset.train, test_data=test, progress=InterruptAt(2))
    assert not list(run.rglob("*.tmp")) and not list(run.rglob(".*"))
    assert load_state(run)["epoch"] == 1
    train(data, run, preset.model, preset.train, test_data=test, resume=True)
    full = _train(tmp_path / "full", epochs=3)
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["history"] == full.history and resumed["test"] == full.test


def test_train_interrupted_in_first_epoch_resumes_from_scratch(tmp_path: Path) -> None:
    preset = get_preset("tiny", epochs=2)
    data, test = corpus_texts(make_corpus()), corpus_texts(make_corpus(16, seed=1))
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(data, run, preset.model, preset.train, test_data=test, progress=InterruptAt(1))
    assert (run / "config.json").is_file() and not state_path(run).exists()
    with pytest.raises(BundleError, match="pass --resume"):
        train(data, run, preset.model, preset.train, test_data=test)
    resumed = train(data, run, preset.model, preset.train, test_data=test, resume=True)
    full = _train(tmp_path / "full", epochs=2)
    assert resumed.history == full.history and resumed.test == full.test


def test_train_resume_without_its_test_data_refused(tmp_path: Path) -> None:
    preset = get_preset("tiny", epochs=1)
    data, test = corpus_texts(make_corpus()), corpus_texts(make_corpus(16, seed=1), source="held-out")
    run = tmp_path / "run"
    train(data, run, preset.model, preset.train, test_data=test)
    longer = get_preset("tiny", epochs=2).train
    with pytest.raises(BundleError, match=r"started with test data 'held-out' \(16 texts\).*--test-data"):
        train(data, run, preset.model, longer, resume=True)
    other = corpus_texts(make_corpus(20, seed=2), source="held-out")
    with pytest.raises(BundleError, match=r"test data 'held-out' \(20 texts\) differ from the 'held-out' \(16 texts\)"):
        train(data, run, preset.model, longer, test_data=other, resume=True)
    assert load_state(run)["epoch"] == 1  # refused before any training
    assert train(data, run, preset.model, longer, test_data=test, resume=True).test is not None


def _changed_rules(run_dir: Path) -> dict:  # type: ignore[type-arg]
    """The run's pinned rules with one made-up special case: "moviefun" splits in two."""
    from lstm_onnx.runtime.tokenizer_rules import load_rules

    rules = load_rules(run_dir / "tokenizer.json")
    rules["rules"]["moviefun"] = ["movie", "fun"]
    return rules


def test_train_pins_given_rules_without_spacy(
    tiny_run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstm_onnx.runtime.tokenizer_rules import load_rules

    rules = _changed_rules(tiny_run_dir)
    monkeypatch.setitem(__import__("sys").modules, "spacy", None)  # `import spacy` raises: as on the GPU machine
    preset = get_preset("tiny", epochs=1)
    data = corpus_texts([*make_corpus(), ("A moviefun film.", "pos")])
    train(data, tmp_path / "run", preset.model, preset.train, tokenizer_rules=rules)
    assert load_rules(tmp_path / "run/tokenizer.json") == rules
    vocab = (tmp_path / "run/vocab.txt").read_text(encoding="utf-8").split("\n")
    assert "moviefun" not in vocab  # split by the given rules, not spaCy's


def test_train_resume_refuses_other_tokenizer_rules(tiny_run_dir: Path, tmp_path: Path) -> None:
    rules = _changed_rules(tiny_run_dir)
    preset = get_preset("tiny", epochs=1)
    data = corpus_texts(make_corpus())
    train(data, tmp_path / "run", preset.model, preset.train, tokenizer_rules=rules)
    longer = get_preset("tiny", epochs=2).train
    with pytest.raises(BundleError, match="given tokenizer rules differ from the ones it pinned"):
        train(
            data,
            tmp_path / "run",
            preset.model,
            longer,
            resume=True,
            tokenizer_rules=_changed_rules(tiny_run_dir) | {"rules": {}},
        )
    assert train(data, tmp_path / "run", preset.model, longer, resume=True, tokenizer_rules=rules).history


def test_train_resume_refuses_weights_replaced_since_the_checkpoint(tmp_path: Path) -> None:
    _train(tmp_path / "run", epochs=1)
    _train(tmp_path / "other", epochs=1, seed=1)
    shutil.copyfile(tmp_path / "other/model.safetensors", tmp_path / "run/model.safetensors")
    with pytest.raises(BundleError, match=r"is not the file this run trained: the checkpoint .* records sha256"):
        _train(tmp_path / "run", epochs=1, resume=True)  # no epoch left: the kept weights are tested as they are


@pytest.mark.parametrize(
    ("option", "value"),
    [("threads", 10**6), ("tokenize_workers", 10**6), ("batch_size", 10**9), ("eval_batch_size", 10**9)],
)
def test_train_config_bounds_every_resource_option(option: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"{option} must be an int in 1\.\."):
        get_preset("tiny", **{option: value})
