"""Placeholder: replaced by the trainer's CLI (train_command)."""

from __future__ import annotations


def train_command() -> None:
    """Train a model (not implemented yet)."""
    raise NotImplementedError
