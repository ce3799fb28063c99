"""The two JSON files of a training run directory, defined once: ``config.json`` (``RunConfig``) and
``metrics.json`` (``RunMetrics``), for classifier and tagging runs alike. The trainers build these dataclasses and
write ``to_dict()``; ``load_run``, ``load_tag_run`` and resuming read them back with ``from_dict``.

Keys are those runs have always had, so runs written by older toolkits load. Keys this toolkit does not know are kept
in ``extra`` and written back unchanged (as in ``runtime.bundle_format``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.bundle_format import split_known
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import parse_json
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.tokenizer import TokenizerConfig

__all__ = ["CONFIG_FILE", "METRICS_FILE", "TAG_TASK", "RunConfig", "RunMetrics", "read_run_config", "read_run_metrics"]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
# A tagging run's config and metrics say so; classifier runs carry no task (they never did).
TAG_TASK = "tag"
_RETRAIN = "train the run again"


def _require(ok: bool, source: Path, key: str, what: str, value: Any) -> None:
    if not ok:
        raise BundleError(f"{source}: {key!r} must be {what}, got {value!r:.60}; {_RETRAIN}.")


def _optional_dict(own: dict[str, Any], key: str, source: Path) -> dict[str, Any] | None:
    value = own.get(key)
    _require(value is None or isinstance(value, dict), source, key, "a JSON object", value)
    return None if value is None else dict(value)


@dataclass(frozen=True)
class RunConfig:
    """``config.json`` of a run: the model as trained and what it needs to run again or be exported.

    Attributes:
        model: The model's settings (``ModelConfig.to_dict()`` or ``TaggerConfig.to_dict()``).
        tokenizer: Tokenizer settings.
        labels: Label (or tag) names in class-id order.
        train: The training settings as recorded (``None``: not recorded; the key is then absent).
        data: What the run trained and tested on: classifier ``{train, test, embeddings, train_texts, val_texts,
            test_texts}``, tagger ``{train, dev, test}`` (``None``: key absent).
        toolkit_version: The toolkit that trained it (``None``: key absent).
        task: ``"tag"`` for a tagging run; ``None`` (key absent) for a classifier.
        tagset: A tagging run's tag set (``upos``/``xpos``); written for tagging runs only.
        embedding_coverage: A tagging run's ``{found, total}`` pretrained vectors (``None`` without); written for
            tagging runs only.
        extra: Keys this toolkit does not know, kept as read.
    """

    model: dict[str, Any]
    tokenizer: TokenizerConfig
    labels: list[str]
    train: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    toolkit_version: str | None = None
    task: str | None = None
    tagset: str | None = None
    embedding_coverage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_tagging(self) -> bool:
        """A tagging run (``"task": "tag"``)."""
        return self.task == TAG_TASK

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json``, keys in the order runs have always had them."""
        data: dict[str, Any] = {} if self.task is None else {"task": self.task}
        data["model"] = dict(self.model)
        if self.train is not None:
            data["train"] = dict(self.train)
        data.update(tokenizer=self.tokenizer.to_dict(), labels=list(self.labels))
        if self.is_tagging:
            data.update(tagset=self.tagset, embedding_coverage=self.embedding_coverage)
        if self.data is not None:
            data["data"] = dict(self.data)
        if self.toolkit_version is not None:
            data["toolkit_version"] = self.toolkit_version
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> RunConfig:
        """Validate and build from the parsed JSON.

        Raises:
            BundleError: A key is missing or malformed; names the key and ``source``.
        """
        _require(isinstance(data, dict), source, "config", "a JSON object", data)
        own, extra = split_known(cls, data)
        for key in ("model", "tokenizer", "labels"):
            if key not in own:
                raise BundleError(f"{source} is not a valid run config (no {key!r}); {_RETRAIN}.")
        labels = own["labels"]
        _require(
            isinstance(labels, list) and all(isinstance(x, str) for x in labels), source, "labels", "strings", labels
        )
        problem = label_problem(labels)
        if problem:
            raise BundleError(f"{source}: {problem}; {_RETRAIN}.")
        _require(isinstance(own["model"], dict), source, "model", "a JSON object", own["model"])
        _require(isinstance(own["tokenizer"], dict), source, "tokenizer", "a JSON object", own["tokenizer"])
        for key in ("toolkit_version", "task", "tagset"):
            _require(own.get(key) is None or isinstance(own[key], str), source, key, "a string", own.get(key))
        try:
            tokenizer = TokenizerConfig.from_dict(own["tokenizer"])
        except (TypeError, ValueError) as err:
            raise BundleError(f"{source} is not a valid run config (bad 'tokenizer': {err}); {_RETRAIN}.") from err
        return cls(
            model=dict(own["model"]),
            tokenizer=tokenizer,
            labels=list(labels),
            train=_optional_dict(own, "train", source),
            data=_optional_dict(own, "data", source),
            toolkit_version=own.get("toolkit_version"),
            task=own.get("task"),
            tagset=own.get("tagset"),
            embedding_coverage=_optional_dict(own, "embedding_coverage", source),
            extra=extra,
        )


@dataclass(frozen=True)
class RunMetrics:
    """``metrics.json`` of a run: validation history and test metrics (rewritten after every epoch).

    Attributes:
        history: One record per epoch (losses, accuracies, ...).
        best_epoch: The epoch whose weights were kept (1-based; 0 before the first).
        stopped_early: Early stopping ended the run.
        test: Test metrics of the kept weights, ``None`` without test data (or before training ends).
        info: Sizes, device and timings of the run.
        epoch_seconds: A classifier run's seconds per epoch (``None``: key absent).
        total_seconds: A tagging run's total seconds (``None``: key absent).
        task: ``"tag"`` for a tagging run; ``None`` (key absent) for a classifier.
        weights_sha256: sha256 of the ``model.safetensors`` these metrics describe, recorded when training wrote it
            (``None``: key absent, a run trained before digests were recorded). Export and verify refuse a run whose
            weights no longer have it, so another run's weights can never inherit these numbers.
        extra: Keys this toolkit does not know, kept as read.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    test: dict[str, Any] | None
    info: dict[str, Any]
    epoch_seconds: list[float] | None = None
    total_seconds: float | None = None
    task: str | None = None
    weights_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``metrics.json``, keys in the order runs have always had them."""
        data: dict[str, Any] = {} if self.task is None else {"task": self.task}
        data.update(
            history=list(self.history),
            best_epoch=self.best_epoch,
            stopped_early=self.stopped_early,
            test=self.test,
            info=dict(self.info),
        )
        if self.epoch_seconds is not None:
            data["epoch_seconds"] = list(self.epoch_seconds)
        if self.total_seconds is not None:
            data["total_seconds"] = self.total_seconds
        if self.weights_sha256 is not None:
            data["weights_sha256"] = self.weights_sha256
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> RunMetrics:
        """Validate and build from the parsed JSON.

        Raises:
            BundleError: A key is malformed; names the key and ``source``.
        """
        _require(isinstance(data, dict), source, "metrics", "a JSON object", data)
        own, extra = split_known(cls, data)
        history = own.get("history", [])
        _require(isinstance(history, list), source, "history", "a list", history)
        best = own.get("best_epoch", 0)
        _require(isinstance(best, int) and not isinstance(best, bool), source, "best_epoch", "an integer", best)
        seconds = own.get("epoch_seconds")
        _require(seconds is None or isinstance(seconds, list), source, "epoch_seconds", "a list", seconds)
        total = own.get("total_seconds")
        _require(total is None or isinstance(total, (int, float)), source, "total_seconds", "a number", total)
        _require(own.get("task") is None or isinstance(own["task"], str), source, "task", "a string", own.get("task"))
        digest = own.get("weights_sha256")
        _require(digest is None or _is_sha256(digest), source, "weights_sha256", "a sha256 hex digest", digest)
        return cls(
            history=list(history),
            best_epoch=best,
            stopped_early=bool(own.get("stopped_early", False)),
            test=_optional_dict(own, "test", source),
            info=_optional_dict(own, "info", source) or {},
            epoch_seconds=None if seconds is None else list(seconds),
            total_seconds=total,
            task=own.get("task"),
            weights_sha256=digest,
            extra=extra,
        )


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _read_json(path: Path, run_dir: Path, what: str) -> Any:
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BundleError(f"{path} is missing; is {run_dir} a training run directory?") from err
    except (OSError, ValueError) as err:
        raise BundleError(f"{path} is not a valid {what} ({err}); {_RETRAIN}.") from err


def read_run_config(run_dir: Path) -> RunConfig:
    """The run's ``config.json``.

    Raises:
        BundleError: Missing, not JSON, or malformed; names the file.
    """
    path = Path(run_dir) / CONFIG_FILE
    return RunConfig.from_dict(_read_json(path, Path(run_dir), "run config"), path)


def read_run_metrics(run_dir: Path) -> RunMetrics | None:
    """The run's ``metrics.json``, ``None`` when there is none (a run stopped before its first epoch ended).

    Raises:
        BundleError: Not JSON, or malformed; names the file.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    return RunMetrics.from_dict(_read_json(path, Path(run_dir), "metrics file"), path)
