"""Classification metrics with numpy alone (shared by ``lstm-onnx evaluate`` and the trainer).

Labels are class ids 0..C-1 in the bundle's label order. ``precision``, ``recall`` and ``f1`` are macro averages
(every class weighs the same; for balanced binary sentiment that equals the mean of both classes' scores);
per-class values are in ``per_label``. A class that is never predicted (or never present) scores 0, not NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ClassificationReport", "classification_report", "confusion_matrix"]


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_labels: int) -> NDArray[np.int64]:
    """Count (true, predicted) pairs.

    Args:
        y_true: int (N) true class ids in [0, num_labels).
        y_pred: int (N) predicted class ids in [0, num_labels).
        num_labels: C.

    Returns:
        int64 (C, C): row = true class, column = predicted class.

    Raises:
        ValueError: Shapes differ or an id lies outside [0, C).
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items but y_pred has {p.size}.")
    for name, ids in (("y_true", t), ("y_pred", p)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_labels):
            raise ValueError(f"{name} holds ids outside [0, {num_labels}): min {ids.min()}, max {ids.max()}.")
    counts = np.bincount(t * num_labels + p, minlength=num_labels * num_labels)
    return counts.reshape(num_labels, num_labels).astype(np.int64)


@dataclass(frozen=True)
class ClassificationReport:
    """Accuracy, macro precision/recall/F1, per-label scores and the confusion matrix.

    Attributes:
        labels: Class labels in id order (C).
        n: Number of texts.
        accuracy: Fraction predicted correctly.
        precision: Macro-averaged precision.
        recall: Macro-averaged recall.
        f1: Macro-averaged F1.
        per_label: ``{label: {"precision", "recall", "f1", "support"}}``.
        confusion_matrix: (C, C) counts as nested lists, row = true, column = predicted.
    """

    labels: list[str]
    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    per_label: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with keys ``accuracy``, ``precision``, ``recall``, ``f1``, ``confusion_matrix`` and more."""
        return {
            "n": self.n,
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "average": "macro",
            "per_label": {k: dict(v) for k, v in self.per_label.items()},
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
        }


def classification_report(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[str]) -> ClassificationReport:
    """Score predictions against the truth.

    Args:
        y_true: int (N) true class ids.
        y_pred: int (N) predicted class ids.
        labels: The C labels, in id order.

    Returns:
        The report (all zeros for N = 0).
    """
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    n = int(cm.sum())
    return ClassificationReport(
        labels=list(labels),
        n=n,
        accuracy=float(tp.sum() / n) if n else 0.0,
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        f1=float(f1.mean()),
        per_label={
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        confusion_matrix=cm.tolist(),
    )
