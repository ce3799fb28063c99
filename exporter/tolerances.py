"""Parity tolerances, shared by ``verify`` and the tests. Loosen one only with a comment citing the measured diff.

One judge everywhere (the toolkit's bundles, the tagger, users' models): a value passes when
``|onnx - torch| <= atol + rtol * |torch|`` element-wise (numpy ``allclose``), ``within`` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CUDA",
    "FP16",
    "FP32",
    "INT8",
    "VARIANT_MAX_ACCURACY_DROP",
    "REFERENCE",
    "Criteria",
    "tolerance_ratio",
    "within",
]


@dataclass(frozen=True)
class Criteria:
    """What a backend must meet against PyTorch.

    Attributes:
        atol: Absolute tolerance on logits; ``None`` skips the element-wise logits check (quantized variants).
        rtol: Relative tolerance on logits (with ``atol``).
        min_label_agreement: Share of texts whose argmax must match, over all texts of a backend (1.0: every case).
        max_prob_diff: Largest allowed absolute difference of softmax probabilities; ``None``: not checked.
        prob_quantile: Share of a backend's texts that must stay within ``max_prob_diff`` (1.0: every text, checked
            per case; below 1.0 the check is over all texts of the backend, so one boundary text cannot fail it).
    """

    atol: float | None
    rtol: float | None
    min_label_agreement: float
    max_prob_diff: float | None = None
    prob_quantile: float = 1.0


# fp32 on ORT CPU: the same maths in a different order. Measured: tiny runs max abs logits diff ~1e-7 (generated
# texts up to 2,100 tokens); an IMDB tiny-preset run on 2,000 test reviews 7.2e-6 (labels identical). Inside 1e-5
# with little margin on real data: watch this on larger runs before loosening (and cite the measurement).
FP32 = Criteria(atol=1e-5, rtol=1e-4, min_label_agreement=1.0)
# The ONNX reference evaluator runs the same fp32 maths in numpy, one unpadded text at a time.
REFERENCE = Criteria(atol=1e-5, rtol=1e-4, min_label_agreement=1.0)
# ORT CUDA (cuDNN LSTM, TF32 off by default in ORT): not measured on this CPU-only machine; start 10x looser than
# fp32 and tighten once measured on a GPU.
CUDA = Criteria(atol=1e-4, rtol=1e-3, min_label_agreement=1.0)
# Dynamic int8 (weights int8, activations quantized per batch): labels may flip near the decision boundary.
# The 0.05 probability budget holds for 99% of texts, not all: measured on 2,000 IMDB test reviews (tiny-preset
# run) the single worst text moved by 0.157 while label agreement was 0.998 and accuracy unchanged (0.807 both);
# a max over thousands of texts is a tail statistic, so the max is reported and the p99 is enforced.
INT8 = Criteria(atol=None, rtol=None, min_label_agreement=0.99, max_prob_diff=0.05, prob_quantile=0.99)
# fp16 weights and activations: same budget as int8 until measured where an fp16 LSTM kernel exists.
FP16 = Criteria(atol=None, rtol=None, min_label_agreement=0.99, max_prob_diff=0.05, prob_quantile=0.99)
# A derived variant (int8, fp16, optimized) may cost at most this many accuracy points on real labelled data, vs
# the fp32 model (the int8 target; fp16 held to the same budget).
VARIANT_MAX_ACCURACY_DROP = 0.3


def tolerance_ratio(got: NDArray[Any], want: NDArray[Any], atol: float, rtol: float) -> NDArray[np.float64]:
    """Element-wise ``|got - want| / (atol + rtol * |want|)``: <= 1 inside the tolerance (0 where both are the same
    non-finite value, inf where only one is)."""
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    same = (g == w) | (np.isnan(g) & np.isnan(w))
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.abs(g - w) / np.maximum(atol + rtol * np.abs(w), np.finfo(np.float64).tiny)
    out: NDArray[np.float64] = np.where(same, 0.0, np.where(np.isfinite(ratio), ratio, np.inf))
    return out


def within(got: NDArray[Any], want: NDArray[Any], atol: float, rtol: float) -> NDArray[np.bool_]:
    """The one judge, element-wise: ``|got - want| <= atol + rtol * |want|`` (equal non-finite values pass)."""
    inside: NDArray[np.bool_] = tolerance_ratio(got, want, atol, rtol) <= 1.0
    return inside
