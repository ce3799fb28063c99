"""How training reports progress: a protocol the CLI implements (library code never prints)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NullProgress", "TrainProgress"]


class TrainProgress(Protocol):
    """Receives progress events; the CLI renders them (library code never prints)."""

    def on_stage(self, message: str) -> None:
        """A preparation step started or finished (reading, tokenizing, vectors...)."""

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` starts with ``batches`` batches."""

    def on_batch(self, loss: float, accuracy: float) -> None:
        """A training batch finished; running mean loss and accuracy of the epoch so far."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """An epoch finished; ``record`` is its history entry."""


class NullProgress:
    """A progress sink that ignores everything."""

    def on_stage(self, message: str) -> None:
        """Ignore."""

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        """Ignore."""

    def on_batch(self, loss: float, accuracy: float) -> None:
        """Ignore."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """Ignore."""
