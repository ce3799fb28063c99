"""Placeholder: replaced by the exporter's CLI (export_command, verify_command, bench_command)."""

from __future__ import annotations


def export_command() -> None:
    """Export (not implemented yet)."""
    raise NotImplementedError


def verify_command() -> None:
    """Verify (not implemented yet)."""
    raise NotImplementedError


def bench_command() -> None:
    """Bench (not implemented yet)."""
    raise NotImplementedError
