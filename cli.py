"""The ``lstm-onnx`` command: one Typer app; the only module importing all three packages.

Command modules keep torch imports inside their functions, so ``--help``, ``predict``, ``evaluate``,
``info`` and ``bench`` (without ``--against``) never load torch.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Annotated, Any, TypeVar

import typer

from exporter.cli import bench_command, export_command, verify_command
from runtime.cli import evaluate_command, info_command, predict_command
from runtime.errors import ToolkitError
from trainer.cli import train_command

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Train a BiLSTM text classifier, export it to ONNX with proven parity, serve it without torch.",
)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    typer.echo(f"warning: {message}", err=True)


def _handles_toolkit_errors(func: F) -> F:
    """Turn a ToolkitError into one line on stderr and exit code 1; anything else keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _show_warning
        try:
            return func(*args, **kwargs)
        except ToolkitError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if not value:
        return
    lines = [f"lstm-onnx {metadata.version('lstm-onnx')}"]
    for dist in ("onnxruntime-gpu", "onnxruntime", "torch"):
        try:
            lines.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    typer.echo("\n".join(lines))
    raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the toolkit, onnxruntime and (if installed) torch versions.",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Train a BiLSTM text classifier, export it to ONNX with proven parity, serve it without torch."""


for _name, _command in (
    ("train", train_command),
    ("export", export_command),
    ("verify", verify_command),
    ("predict", predict_command),
    ("evaluate", evaluate_command),
    ("info", info_command),
    ("bench", bench_command),
):
    app.command(_name)(_handles_toolkit_errors(_command))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
