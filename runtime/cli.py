"""Placeholder: replaced by the runtime's CLI (predict_command, evaluate_command, info_command)."""

from __future__ import annotations


def predict_command() -> None:
    """Predict (not implemented yet)."""
    raise NotImplementedError


def evaluate_command() -> None:
    """Evaluate (not implemented yet)."""
    raise NotImplementedError


def info_command() -> None:
    """Info (not implemented yet)."""
    raise NotImplementedError
