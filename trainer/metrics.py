"""Classification metrics from predicted and true class ids (numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["classification_metrics"]


def classification_metrics(
    targets: NDArray[np.int64], predictions: NDArray[np.int64], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-label and macro precision/recall/F1, and the confusion matrix.

    Args:
        targets: int64 (N) true class ids.
        predictions: int64 (N) predicted class ids.
        labels: Label names in class-id order.

    Returns:
        JSON-able dict: ``accuracy``, ``precision``/``recall``/``f1`` (macro), ``per_label``
        {label: {precision, recall, f1, support}}, ``confusion`` (rows: true, columns: predicted), ``n``.
        A ratio with a zero denominator is 0.0.
    """
    c = len(labels)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (targets, predictions), 1)
    per_label: dict[str, dict[str, float]] = {}
    for i, name in enumerate(labels):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        actual = float(confusion[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(actual)}
    n = int(len(targets))
    return {
        "n": n,
        "accuracy": float(np.trace(confusion)) / n if n else 0.0,
        "precision": float(np.mean([m["precision"] for m in per_label.values()])),
        "recall": float(np.mean([m["recall"] for m in per_label.values()])),
        "f1": float(np.mean([m["f1"] for m in per_label.values()])),
        "per_label": per_label,
        "confusion": confusion.tolist(),
    }
