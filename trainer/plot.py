"""Training curves as a PNG (matplotlib's Agg canvas directly: no pyplot global state, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstm_onnx.trainer.run_dir import atomic_write_bytes

__all__ = ["CURVES_FILE", "plot_curves"]

CURVES_FILE = "curves.png"


def plot_curves(history: Sequence[dict[str, Any]], path: Path) -> None:
    """Plot loss and accuracy per epoch (train and validation) and write the PNG atomically.

    Args:
        history: One record per epoch with ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
            ``val_accuracy``.
        path: Where to write the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    for col, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, col + 1)
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], marker="o", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in history], marker="o", label="validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
