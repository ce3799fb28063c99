"""Stop a run whose numbers stop being numbers: a NaN or infinite loss means the model diverged.

Such a run used to go on to the end with exit 0: every loss NaN, the argmax of NaN logits always the first label, and a
``metrics.json`` holding ``NaN`` (which is not JSON). Training now stops at the first non-finite training loss, and
refuses to record a non-finite validation or test number, both times with one ``TrainingError`` line. Classifier and
tagger training loops share these checks.
"""

from __future__ import annotations

import math
from typing import Any

from lstm_onnx.runtime.errors import TrainingError
from lstm_onnx.runtime.json_text import non_finite_numbers

__all__ = ["require_finite_loss", "require_finite_record"]

_FIX = "Lower the learning rate or set clip_norm (--config), and check the data and any --embeddings vectors"


def require_finite_loss(loss: float, epoch: int, step: int) -> None:
    """Stop training at a non-finite training loss.

    Args:
        loss: The batch's mean loss.
        epoch: 1-based epoch.
        step: 1-based batch within the epoch.

    Raises:
        TrainingError: ``loss`` is NaN or infinite.
    """
    if not math.isfinite(loss):
        raise TrainingError(
            f"Training diverged: the loss is {loss} at epoch {epoch}, batch {step}; the run stops here. {_FIX}."
        )


def require_finite_record(record: dict[str, Any], where: str) -> None:
    """Refuse to record an epoch's or the test set's numbers when one is NaN or infinite.

    Args:
        record: Losses, accuracies and the like.
        where: What they measure, for the message (``"epoch 3"``, ``"the test set"``).

    Raises:
        TrainingError: A number in ``record`` is NaN or infinite; names which.
    """
    bad = non_finite_numbers(record)
    if bad:
        raise TrainingError(
            f"Training diverged: {', '.join(bad[:3])} of {where} is not a finite number; the run stops here. {_FIX}."
        )
