"""`lstm-onnx train --task tag`: read the tagged data, resolve the tagging preset, train, print the test metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tagging_data import SPLITS, TaggedSentences, read_tagged
from lstm_onnx.trainer.config import TrainConfig
from lstm_onnx.trainer.progress import TrainProgress
from lstm_onnx.trainer.tag_config import TaggerConfig, get_tag_preset

__all__ = ["describe", "read_tag_splits", "train_tag"]


def read_tag_splits(data: Path, tagset: str) -> tuple[TaggedSentences, TaggedSentences, TaggedSentences | None]:
    """Train, dev and (optional) test sentences from a folder of ``*-train``/``*-dev``/``*-test`` files.

    A single file is split instead: its last 10% of sentences become dev, and there is no test set.

    Raises:
        DataError: A folder without train or dev files, or a file too small to split.
    """
    if data.is_dir():
        train, dev = (read_tagged(data, split, tagset) for split in SPLITS[:2])
        try:
            test: TaggedSentences | None = read_tagged(data, "test", tagset)
        except DataError:
            test = None
        return train, dev, test
    whole = read_tagged(data, tagset=tagset)
    cut = len(whole) - max(1, len(whole) // 10)
    if cut < 1:
        raise DataError(f"{data} holds {len(whole)} sentence(s); a tagger needs more to keep some for dev.")
    rows = (whole.tokens, whole.tags)
    train = TaggedSentences(rows[0][:cut], rows[1][:cut], whole.source)
    dev = TaggedSentences(rows[0][cut:], rows[1][cut:], f"{whole.source} (last 10%)")
    return train, dev, None


def train_tag(
    data: Path,
    out: Path,
    preset: str,
    overrides: dict[str, Any],
    config_file: dict[str, Any] | None,
    resume: bool,
    limit: int | None,
    tagset: str,
    progress: TrainProgress,
    tokenizer_rules: dict[str, Any] | None = None,
) -> Any:
    """Resolve preset < config file < options, read the data and train (see ``trainer.tag_train.train_tagger``).

    Args:
        data: A tagged file or a folder of splits.
        out: Run directory.
        preset: Tagging preset name.
        overrides: ``TrainConfig`` fields from command-line options (``None`` values ignored).
        config_file: A parsed ``{"model": {...}, "train": {...}}`` file, or ``None``.
        resume: Continue the run in ``out``.
        limit: Use the first N sentences of each split.
        tagset: ``upos`` or ``xpos``.
        progress: Progress sink.
        tokenizer_rules: Tokenizer rules to pin instead of the installed spaCy's (``load_rules``).

    Returns:
        The ``TagTrainResult``.

    Raises:
        DataError: Bad preset values, data or config file.
    """
    from lstm_onnx.trainer.tag_train import train_tagger

    model, train_config = get_tag_preset(preset)
    try:
        file = config_file or {}
        model = TaggerConfig.from_dict({**model.to_dict(), **file.get("model", {})})
        given = {k: v for k, v in overrides.items() if v is not None}
        train_config = TrainConfig.from_dict({**train_config.to_dict(), **file.get("train", {}), **given})
    except (TypeError, ValueError, AttributeError) as err:
        raise DataError(f"Bad tagging settings: {err}") from err
    train, dev, test = read_tag_splits(data, tagset)
    if limit is not None:
        train, dev = train.head(limit), dev.head(limit)
        test = test.head(limit) if test is not None else None
    return train_tagger(
        train,
        dev,
        out,
        model,
        train_config,
        test=test,
        tagset=tagset,
        resume=resume,
        progress=progress,
        tokenizer_rules=tokenizer_rules,
    )


def describe(result: Any) -> str:
    """One JSON line of the run's headline numbers, for the terminal."""
    test = result.test or {}
    return json.dumps(
        {
            "test_accuracy": test.get("accuracy"),
            "test_tokens": test.get("tokens"),
            "best_epoch": result.best_epoch,
            "total_seconds": result.info.get("total_seconds"),
            "run_dir": str(result.run_dir),
        }
    )
