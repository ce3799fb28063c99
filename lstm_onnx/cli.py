"""The ``lstm-onnx`` command: one Typer app; the only module importing all three packages.

Command modules keep torch imports inside their functions, so ``--help``, ``predict``, ``evaluate``,
``info`` and ``bench`` (without ``--against``) never load torch.
"""

from __future__ import annotations

import functools
import os
import select
import sys
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Annotated, Any, TypeVar

import typer

from lstm_onnx import __version__
from lstm_onnx.bench.cli import bench_command
from lstm_onnx.exporter.cli import export_command, verify_command
from lstm_onnx.exporter.cli_module import export_module_command
from lstm_onnx.runtime.bundle_cli import package_command, relabel_command
from lstm_onnx.runtime.cli import evaluate_command, info_command, predict_command
from lstm_onnx.runtime.errors import ORT_MISSING, MissingDependencyError, ToolkitError, WriteError
from lstm_onnx.runtime.scale_cli import score_command, serve_command
from lstm_onnx.trainer.cli import train_command

F = TypeVar("F", bound=Callable[..., Any])

_SUMMARY = (
    "Train BiLSTM classifiers and taggers, export them (or your own nn.LSTM/nn.GRU models) to ONNX with proven "
    "parity, serve them without torch."
)

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,
    help=_SUMMARY,
)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    typer.echo(f"warning: {message}", err=True)


# Modules of the optional extras (pyproject.toml): a runtime-only install lacks them.
_OPTIONAL_MODULES = frozenset({"torch", "safetensors", "matplotlib", "spacy", "onnx", "onnxscript"})


# A reader that closes the pipe early (`lstm-onnx predict ... | head -1`) ends a command as it ends Unix tools: quietly,
# with the status of a process killed by SIGPIPE (128 + 13), so `set -o pipefail` still sees the output was cut short.
CLOSED_OUTPUT_EXIT = 141


def _closed_outputs() -> list[int]:
    """File descriptors of stdout/stderr that are pipes whose reader has gone (poll reports POLLERR for them)."""
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # replaced by an in-memory stream (tests, embedding apps)
            continue
    if not hasattr(select, "poll"):  # Windows: no poll; the BrokenPipeError itself is the only evidence
        return fds
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLOUT)
    return [fd for fd, events in poller.poll(0) if events & select.POLLERR]


def _end_on_closed_output() -> None:
    """After a BrokenPipeError: exit quietly if stdout or stderr lost its reader; otherwise let the error show.

    Raises:
        typer.Exit: With ``CLOSED_OUTPUT_EXIT``.
    """
    closed = _closed_outputs()
    if not closed:
        return  # a pipe of our own (e.g. to a worker process) broke: a real failure, keep its traceback
    # Output still buffered would meet the closed pipe again when Python flushes at exit, and print a traceback.
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in closed:
        os.dup2(devnull, fd)
    os.close(devnull)
    raise typer.Exit(CLOSED_OUTPUT_EXIT)


class _ResultStream:
    """``sys.stdout`` while a command runs: a write of its results the system refuses (a full disk under
    ``> file``, a quota, a read-only file system) is one ``WriteError`` line instead of a traceback. A reader that
    closed the pipe stays a ``BrokenPipeError`` (exit 141, ``_end_on_closed_output``). Everything else is the stream's.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> Any:
        try:
            return self._stream.write(text)  # what the stream returns (a count; None from some replacements)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise self._failure(err) from err

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise self._failure(err) from err

    def _failure(self, err: OSError) -> WriteError:
        self.failed = True
        return WriteError(
            f"Cannot write the results to standard output: {err.strerror or err}; free some space where it goes, or "
            "send it elsewhere. The output is incomplete."
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _drop_buffered_output() -> None:
    """After stdout refused a write: discard what is still buffered, so Python's flush at exit does not meet the
    same error and print a second report."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests, embedding apps): nothing to drop
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _handles_toolkit_errors(func: F, name: str, extra: str | None) -> F:
    """Turn a ToolkitError into one line on stderr and exit code 1; anything else keeps its traceback.

    A command that needs an optional extra (``extra``) and meets a runtime-only install gets a
    ``MissingDependencyError`` carrying the install command instead of a deep ``ModuleNotFoundError``. A closed
    stdout ends the command quietly with ``CLOSED_OUTPUT_EXIT``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _show_warning
        stdout = sys.stdout
        results = _ResultStream(stdout)
        sys.stdout = results
        try:
            try:
                result = func(*args, **kwargs)
                sys.stdout.flush()  # output still buffered meets a closed pipe or a full disk here, where it is handled
                return result
            except ModuleNotFoundError as err:
                missing = (err.name or "").split(".")[0]
                if missing == "onnxruntime":
                    raise MissingDependencyError(ORT_MISSING) from err
                if extra is None or missing not in _OPTIONAL_MODULES:
                    raise
                raise MissingDependencyError(
                    f"`lstm-onnx {name}` needs {missing!r}, which is not installed. "
                    f"Install the extra: pip install torch==2.13.0 && pip install 'lstm-onnx[{extra}]'."
                ) from err
        except ToolkitError as err:
            sys.stdout = stdout
            if results.failed:
                _drop_buffered_output()
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err
        except BrokenPipeError:
            sys.stdout = stdout
            _end_on_closed_output()
            raise
        finally:
            sys.stdout = stdout

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if not value:
        return
    lines = [f"lstm-onnx {__version__}"]
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
    """Train, export with proven parity, and serve BiLSTM/GRU models without torch."""


for _name, _command, _extra in (
    ("train", train_command, "train"),
    ("export", export_command, "export"),
    ("verify", verify_command, "export"),
    ("export-module", export_module_command, "export"),
    ("predict", predict_command, None),
    ("evaluate", evaluate_command, None),
    ("info", info_command, None),
    ("package", package_command, None),
    ("relabel", relabel_command, None),
    ("bench", bench_command, "export"),  # only `bench --against` (PyTorch) and the variants it derives need it
    ("score", score_command, None),  # Ray (`--engine ray`) and pyarrow (Parquet) say which extra they need
    ("serve", serve_command, None),
):
    app.command(_name)(_handles_toolkit_errors(_command, _name, _extra))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
