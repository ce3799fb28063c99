"""Commands that repackage or rewrite a bundle without torch: ``package`` (a pip-installable wheel), ``relabel``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["package_command", "relabel_command"]


def package_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, or a .zip/.tar.gz of one.", exists=True)],
    out: Annotated[Path, typer.Option("--out", help="Folder the wheel is written to.", file_okay=False)] = Path("dist"),
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Module and package name, a lowercase identifier (default: the bundle's name)."),
    ] = None,
    version: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="PEP 440 version of the package (default: the bundle's version)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace a wheel of the same name.")] = False,
) -> None:
    """Build a pip-installable wheel carrying the bundle; after `pip install` it loads as lstm_onnx.load("NAME")."""
    from lstm_onnx.runtime.wheel import build_model_wheel

    wheel = build_model_wheel(bundle, out, name=name, version=version, force=force)
    typer.echo(str(wheel))


def _label_pairs(values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise typer.BadParameter(f"expected OLD=NEW, got {value!r}", param_hint="--label")
        if old in pairs:
            raise typer.BadParameter(f"label {old!r} is renamed twice", param_hint="--label")
        pairs[old] = new
    return pairs


def relabel_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory, or a .zip/.tar.gz of one.", exists=True)],
    label: Annotated[
        list[str], typer.Option("--label", help="OLD=NEW, once per label to rename (e.g. --label neg=negative).")
    ],
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Directory to write (default: BUNDLE-relabelled; BUNDLE itself with --force)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Replace the target; without --out, rewrite BUNDLE in place.")
    ] = False,
) -> None:
    """Rename a bundle's labels: config, metrics, model card and checksums rewritten together."""
    from lstm_onnx.runtime.relabel import relabel_bundle

    typer.echo(str(relabel_bundle(bundle, _label_pairs(label), out, force=force)))
