"""The run directory's config.json and metrics.json as dataclasses: today's keys kept, older runs still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.run_dir import load_run
from lstm_onnx.trainer.run_format import RunConfig, RunMetrics, read_run_config, read_run_metrics
from lstm_onnx.trainer.tag_run import load_tag_run, run_task
from tests.exporter._exporter_runs import make_run_dir

_TRAIN = {"epochs": 15, "batch_size": 8, "lr": 0.02, "seed": 0, "embeddings": None, "device": "cpu"}
_HISTORY = [{"epoch": 1, "train_loss": 0.71, "train_accuracy": 0.47, "val_loss": 0.69, "val_accuracy": 0.33}]
# config.json and metrics.json exactly as the classifier trainer wrote them before the dataclasses existed.
_CLASSIFY_CONFIG_KEYS = ["model", "train", "tokenizer", "labels", "data", "toolkit_version"]
_CLASSIFY_METRICS: dict[str, Any] = {
    "history": _HISTORY,
    "best_epoch": 1,
    "stopped_early": False,
    "test": None,
    "info": {"train_texts": 36, "val_texts": 12, "test_texts": 0, "device": "cpu", "total_seconds": 1.58},
    "epoch_seconds": [0.2],
}
# ... and as the tagging trainer wrote them.
_TAG_CONFIG_KEYS = [
    "task",
    "model",
    "train",
    "tokenizer",
    "labels",
    "tagset",
    "embedding_coverage",
    "data",
    "toolkit_version",
]
_TAG_METRICS: dict[str, Any] = {
    "task": "tag",
    "history": _HISTORY,
    "best_epoch": 1,
    "stopped_early": False,
    "test": {"accuracy": 0.95},
    "info": {"train_sentences": 60, "device": "cpu", "total_seconds": 0.55},
    "total_seconds": 0.55,
}


def _write(path: Path, data: Any) -> str:
    text = json.dumps(data, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def _old_classifier_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    run = make_run_dir(tmp_path / "run")
    old = json.loads((run / "config.json").read_text())
    config = {
        "model": old["model"],
        "train": _TRAIN,
        "tokenizer": {"lowercase": True, "max_length": None, "max_chars": 100000},
        "labels": ["neg", "pos"],
        "data": {
            "train": {"name": "corpus", "texts": 48},
            "test": None,
            "embeddings": None,
            "train_texts": 36,
            "val_texts": 12,
            "test_texts": 0,
        },
        "toolkit_version": "0.1.0",
    }
    _write(run / "config.json", config)
    _write(run / "metrics.json", _CLASSIFY_METRICS)
    return run, config


def test_a_classifier_run_written_before_the_dataclasses_loads_and_round_trips(tmp_path: Path) -> None:
    run, config = _old_classifier_run(tmp_path)
    loaded = load_run(run)
    assert loaded.labels == ["neg", "pos"]
    assert loaded.config.train == _TRAIN and loaded.config.toolkit_version == "0.1.0"
    assert loaded.metrics is not None and loaded.metrics.epoch_seconds == [0.2] and loaded.metrics.test is None
    assert list(loaded.config.to_dict()) == _CLASSIFY_CONFIG_KEYS
    assert loaded.config.to_dict() == config
    assert list(loaded.metrics.to_dict().items()) == list(_CLASSIFY_METRICS.items())
    assert run_task(run) == "classify"


def test_a_run_without_train_or_data_records_still_loads(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run")  # the oldest layout: model, tokenizer, labels, toolkit_version
    loaded = load_run(run)
    assert (loaded.config.train, loaded.config.data, loaded.metrics) == (None, None, None)
    assert loaded.config.to_dict() == json.loads((run / "config.json").read_text())


def test_a_tagging_run_written_before_the_dataclasses_loads_and_round_trips(
    tiny_tag_run_dir: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(tiny_tag_run_dir, tmp_path / "run"))
    model = json.loads((run / "config.json").read_text())["model"]
    config = {
        "task": "tag",
        "model": model,
        "train": _TRAIN,
        "tokenizer": {"lowercase": False, "max_length": None, "max_chars": 100000},
        "labels": ["ADJ", "DET", "NOUN", "PUNCT", "VERB"],
        "tagset": "upos",
        "embedding_coverage": None,
        "data": {"train": "tiny-train.conllu", "dev": "tiny-dev.conllu", "test": "tiny-test.conllu"},
        "toolkit_version": "0.1.0",
    }
    _write(run / "config.json", config)
    _write(run / "metrics.json", _TAG_METRICS)
    with pytest.warns(UserWarning, match="records no weights digest .* test metrics cannot be checked"):
        loaded = load_tag_run(run)
    assert loaded.config.is_tagging and loaded.config.tagset == "upos"
    assert loaded.metrics is not None and loaded.metrics.test == {"accuracy": 0.95}
    assert list(loaded.config.to_dict().items()) == list(config.items())
    assert list(loaded.metrics.to_dict().items()) == list(_TAG_METRICS.items())
    assert run_task(run) == "tag"


def test_trainers_write_exactly_the_keys_runs_always_had(tiny_run_dir: Path, tiny_tag_run_dir: Path) -> None:
    def keys(run: Path, name: str) -> list[str]:
        return list(json.loads((run / name).read_text()))

    # ... plus, last, the digest of the weights the metrics describe.
    assert keys(tiny_run_dir, "config.json") == _CLASSIFY_CONFIG_KEYS
    assert keys(tiny_run_dir, "metrics.json") == [*_CLASSIFY_METRICS, "weights_sha256"]
    assert keys(tiny_tag_run_dir, "config.json") == _TAG_CONFIG_KEYS
    assert keys(tiny_tag_run_dir, "metrics.json") == [*_TAG_METRICS, "weights_sha256"]


def test_unknown_keys_are_kept_when_written_back(tmp_path: Path) -> None:
    run, config = _old_classifier_run(tmp_path)
    _write(run / "config.json", {**config, "from_a_newer_toolkit": {"x": 1}})
    _write(run / "metrics.json", {**_CLASSIFY_METRICS, "calibration": 0.1})
    assert read_run_config(run).to_dict()["from_a_newer_toolkit"] == {"x": 1}
    metrics = read_run_metrics(run)
    assert metrics is not None and metrics.extra == {"calibration": 0.1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": "neg,pos"}, "'labels' must be strings"),
        ({"model": [1, 2]}, "'model' must be a JSON object"),
        ({"data": "corpus"}, "'data' must be a JSON object"),
        ({"task": 3}, "'task' must be a string"),
        ({"tokenizer": {"max_chars": "lots"}}, "bad 'tokenizer'"),
    ],
)
def test_malformed_config_is_one_bundle_error_naming_the_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    run, config = _old_classifier_run(tmp_path)
    _write(run / "config.json", {**config, **change})
    with pytest.raises(BundleError, match=message):
        load_run(run)


def test_missing_config_key_and_bad_metrics_are_bundle_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no 'labels'"):
        RunConfig.from_dict({"model": {}, "tokenizer": {}}, tmp_path / "config.json")
    with pytest.raises(BundleError, match="'best_epoch' must be an integer"):
        RunMetrics.from_dict({**_CLASSIFY_METRICS, "best_epoch": "1"}, tmp_path / "metrics.json")
    run, _ = _old_classifier_run(tmp_path)
    (run / "metrics.json").write_text("{truncated", encoding="utf-8")
    with pytest.raises(BundleError, match="metrics.json is not a valid metrics file"):
        load_run(run)
