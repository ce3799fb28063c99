from __future__ import annotations

import numpy as np
import pytest

from lstm_onnx.runtime.metrics import classification_report, confusion_matrix


def test_confusion_matrix_counts_true_rows_predicted_columns() -> None:
    assert confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2).tolist() == [[1, 1], [1, 2]]


def test_confusion_matrix_rejects_out_of_range_ids() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 2], [0, 1], 2)


def test_classification_report_macro_scores() -> None:
    report = classification_report(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), ["neg", "pos"])
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.per_label["pos"]["precision"] == pytest.approx(2 / 3)
    assert report.per_label["neg"]["recall"] == pytest.approx(1 / 2)
    assert report.precision == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert report.f1 == pytest.approx((0.5 + 2 / 3) / 2)
    assert set(report.to_dict()) >= {"accuracy", "precision", "recall", "f1", "confusion_matrix"}


def test_classification_report_scores_unpredicted_class_zero() -> None:
    report = classification_report([0, 1], [0, 0], ["neg", "pos"])
    assert report.per_label["pos"]["precision"] == 0.0 and report.per_label["pos"]["f1"] == 0.0
