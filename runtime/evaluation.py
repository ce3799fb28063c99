"""``evaluate``: score a bundle on labelled data with the runtime alone (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_onnx.runtime.datasets import check_labels, read_dataset, stratified_sample
from lstm_onnx.runtime.metrics import ClassificationReport, classification_report
from lstm_onnx.runtime.predictor import TextClassifier

__all__ = ["evaluate"]


def evaluate(
    model: TextClassifier, data: Path | str, split: str = "test", limit: int | None = None, seed: int = 0
) -> ClassificationReport:
    """Predict every text of one split of a labelled dataset and score the predictions.

    Args:
        model: The loaded model.
        data: IMDB directory or tarball, CSV or JSONL file (``runtime.datasets.read_dataset``).
        split: ``train`` or ``test`` (CSV/JSONL files are one split).
        limit: Score a stratified sample of this many texts (label balance kept); ``None``: all.
        seed: Seed of that sample.

    Returns:
        Accuracy, macro precision/recall/F1, per-label scores and the confusion matrix.

    Raises:
        DataError: The data cannot be read or holds labels the model does not know.
        InputError: A text is empty or too long (as in ``TextClassifier.predict``).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}.")
    dataset = read_dataset(data, split=split)
    check_labels(dataset, model.labels)
    if limit is not None and limit < len(dataset):
        dataset = stratified_sample(dataset, limit, seed)
    index = {label: i for i, label in enumerate(model.labels)}
    y_true = np.fromiter((index[label] for label in dataset.labels), dtype=np.int64, count=len(dataset))
    y_pred = np.fromiter(
        (index[p.label] for p in model.iter_predict(dataset.texts)), dtype=np.int64, count=len(dataset)
    )
    return classification_report(y_true, y_pred, model.labels)
