"""``evaluate``: score a bundle on labelled data with the runtime alone (no torch)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lstm_onnx.runtime.datasets import check_labels, read_dataset, stratified_sample
from lstm_onnx.runtime.metrics import ClassificationReport, classification_report
from lstm_onnx.runtime.predictor import Prediction, TextClassifier

__all__ = ["evaluate"]


def evaluate(
    model: TextClassifier,
    data: Path | str,
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
    text_field: str | None = None,
    label_field: str | None = None,
    progress: bool = False,
) -> ClassificationReport:
    """Predict every text of one split of a labelled dataset and score the predictions.

    Args:
        model: The loaded model.
        data: IMDB directory or tarball, CSV or JSONL file (``runtime.datasets.read_dataset``).
        split: ``train`` or ``test`` (CSV/JSONL files are one split).
        limit: Score a stratified sample of this many texts (label balance kept); ``None``: all.
        seed: Seed of that sample.
        text_field: CSV column / JSON key of the text (``read_dataset``'s default when ``None``).
        label_field: CSV column / JSON key of the label.
        progress: Show a progress bar on stderr when it is a terminal.

    Returns:
        Accuracy, macro precision/recall/F1, per-label scores and the confusion matrix.

    Raises:
        DataError: The data cannot be read or holds labels the model does not know.
        InputError: A text is empty or too long (as in ``TextClassifier.predict``).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}.")
    dataset = read_dataset(data, split=split, text_field=text_field, label_field=label_field)
    check_labels(dataset, model.labels)
    if limit is not None and limit < len(dataset):
        dataset = stratified_sample(dataset, limit, seed)
    index = {label: i for i, label in enumerate(model.labels)}
    y_true = np.fromiter((index[label] for label in dataset.labels), dtype=np.int64, count=len(dataset))
    predictions = model.iter_predict(dataset.texts)
    if progress and sys.stderr.isatty():
        predictions = _progress(predictions, len(dataset))
    y_pred = np.fromiter((index[p.label] for p in predictions), dtype=np.int64, count=len(dataset))
    return classification_report(y_true, y_pred, model.labels)


def _progress(predictions: Iterator[Prediction], total: int) -> Iterator[Prediction]:
    from rich.console import Console
    from rich.progress import track

    yield from track(predictions, total=total, description="evaluate", console=Console(stderr=True), transient=True)
