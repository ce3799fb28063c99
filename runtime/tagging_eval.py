"""Token-level scores of a tagger: accuracy over every gold token, per-tag precision/recall/F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lstm_onnx.runtime.metrics import classification_report
from lstm_onnx.runtime.tagging_data import TaggedSentences

__all__ = ["evaluate_tags", "tag_report"]


def tag_report(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Score predicted tags against gold tags, token by token.

    Args:
        gold: Gold tags per sentence.
        predicted: Predicted tags per sentence (same lengths).
        labels: The tagger's tags in id order.

    Returns:
        ``ClassificationReport.to_dict()`` over tokens whose gold tag the tagger knows, with ``accuracy`` over
        every gold token (a gold tag outside ``labels`` is always an error), ``tokens`` (their count) and
        ``unknown_tags`` (``{gold tag outside labels: tokens}``, empty when there are none).
    """
    truth = np.array([t for row in gold for t in row], dtype=object)
    pred = np.array([t for row in predicted for t in row], dtype=object)
    if truth.shape != pred.shape:
        raise ValueError(f"{truth.size} gold tags but {pred.size} predicted tags.")
    index = {tag: i for i, tag in enumerate(labels)}
    known = np.array([t in index for t in truth], dtype=bool)
    truth_ids = np.array([index[t] for t in truth[known]], dtype=np.int64)
    pred_ids = np.array([index[t] for t in pred[known]], dtype=np.int64)
    report = classification_report(truth_ids, pred_ids, labels).to_dict()
    report["accuracy"] = float(np.sum(truth == pred) / max(truth.size, 1))
    report["tokens"] = int(truth.size)
    # Gold tags the tagger cannot predict count as errors in accuracy but have no row in per_label: name them.
    unknown, counts = np.unique(truth[~known].astype(str), return_counts=True)
    report["unknown_tags"] = {str(tag): int(n) for tag, n in zip(unknown, counts, strict=True)}
    return report


def evaluate_tags(tagger: Any, data: TaggedSentences) -> dict[str, Any]:
    """Tag ``data``'s gold tokens with ``tagger`` (a ``TokenTagger``) and score the result (see ``tag_report``)."""
    predicted = [s.tags for s in tagger.tag_tokens(data.tokens)]
    report = tag_report(data.tags, predicted, tagger.labels)
    report["sentences"] = len(data)
    report["source"] = data.source
    return report
