"""`lstm-onnx export-module FILE.py:FACTORY --out DIR`: export and verify anyone's PyTorch RNN model.

torch is imported inside the command only, so `lstm-onnx --help` stays torch-free.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from lstm_onnx.runtime.errors import ExportError, ParityError

__all__ = ["check_out", "export_module_command", "load_factory"]

MODEL_FILE = "model.onnx"
REPORT_JSON = "parity.json"
REPORT_TEXT = "parity.txt"
OUTPUT_FILES = frozenset({MODEL_FILE, REPORT_JSON, REPORT_TEXT})


def _user_error(what: str, err: BaseException) -> ExportError:
    """One line for an exception raised by the user's code: what was being done, the type and first line."""
    first = str(err).splitlines()[0] if str(err) else ""
    return ExportError(f"{what} raised {type(err).__name__}{': ' + first if first else ''}")


def load_factory(target: str) -> tuple[Any, tuple[Any, ...], dict[str, dict[int, str]] | None]:
    """Import ``FILE.py:FACTORY`` and call it.

    ``FILE.py``'s folder is put first on ``sys.path`` while it is imported and the factory runs, as ``python
    FILE.py`` would, so a model file can import its siblings.

    Returns:
        ``(model, example_inputs, dynamic_axes or None)``; ``example_inputs`` as a tuple (a single tensor or a list
        is accepted).

    Raises:
        ExportError: Bad target, missing file or factory, the file failing to import or the factory raising
            (type and first line of the error), or a factory returning something else.
    """
    file, sep, name = target.rpartition(":")
    path = Path(file)
    if not sep or not name.isidentifier() or path.suffix != ".py":
        raise ExportError(f"Target {target!r} is not FILE.py:FACTORY, e.g. model.py:make_model.")
    if not path.is_file():
        raise ExportError(f"Model file {file} does not exist.")
    module_name = f"lstm_onnx_user_{path.stem}_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ExportError(f"Cannot import {file} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        # Registered so the export can find (and patch) the names the model's module binds.
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        # User code can fail in any way; each becomes one line naming the file (the traceback stays chained).
        except (Exception, SystemExit) as err:  # noqa: BLE001
            sys.modules.pop(module_name, None)
            if isinstance(err, SyntaxError):
                raise ExportError(f"{file} line {err.lineno}: SyntaxError: {err.msg}") from err
            raise _user_error(f"Importing {file}", err) from err
        factory = getattr(module, name, None)
        if not callable(factory):
            raise ExportError(f"{file} has no callable {name!r}; define def {name}(): return model, example_inputs.")
        try:
            made = factory()
        except (Exception, SystemExit) as err:  # noqa: BLE001 - see above
            raise _user_error(f"{name}() in {file}", err) from err
    finally:
        sys.path.remove(folder)
    return _check_made(name, made)


def _check_made(name: str, made: Any) -> tuple[Any, tuple[Any, ...], dict[str, dict[int, str]] | None]:
    """Check the factory's result has the documented shape (types of the parts are checked by ``export_module``)."""
    if not isinstance(made, tuple) or len(made) not in (2, 3):
        kind = f"a {len(made)}-tuple" if isinstance(made, tuple) else f"a {type(made).__name__}"
        raise ExportError(f"{name}() returned {kind}; return (model, example_inputs[, dynamic_axes]).")
    model, example, *rest = made
    if isinstance(example, list):
        example = tuple(example)
    elif not isinstance(example, tuple):
        example = (example,)
    axes = rest[0] if rest else None
    if axes is not None and not (
        isinstance(axes, dict)
        and all(
            isinstance(k, str) and isinstance(v, dict) and all(isinstance(a, int) for a in v) for k, v in axes.items()
        )
    ):
        raise ExportError(
            f"{name}() returned dynamic_axes of type {type(axes).__name__}; expected {{input name: {{axis: name}}}}, "
            "e.g. {'ids': {0: 'batch_size', 1: 'sequence_length'}}."
        )
    return model, example, axes


def check_out(out: Path, force: bool) -> None:
    """Refuse an ``--out`` that is a file, exists without ``force``, or holds anything but what this command writes.

    Raises:
        ExportError: Names the path and the fix; ``--force`` never deletes files this command did not write.
    """
    if out.is_file() or out.is_symlink():
        raise ExportError(f"--out {out} is a file or link; give a directory path.")
    if not out.exists():
        return
    if not force:
        raise ExportError(f"{out} already exists; pass --force to replace it.")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OUTPUT_FILES or not p.is_file())
    if foreign:
        raise ExportError(
            f"{out} holds files export-module did not write ({', '.join(foreign[:3])}); --force replaces only "
            f"{', '.join(sorted(OUTPUT_FILES))}. Choose another --out."
        )


def export_module_command(
    target: Annotated[str, typer.Argument(help="FILE.py:FACTORY; FACTORY() returns (model, example_inputs[, axes]).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write model.onnx and the parity report to.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace --out if it exists.")] = False,
) -> None:
    """Export a PyTorch RNN model (nn.LSTM/nn.GRU) to ONNX and prove parity on every backend."""
    from lstm_onnx.exporter.module_export import export_module
    from lstm_onnx.exporter.module_verify import format_table, judge, verify

    check_out(out, force)
    model, example, axes = load_factory(target)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"Cannot create the folder of --out {out}: {err.strerror} ({err.filename}).") from err
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{out.name}.") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        info = export_module(model, example, staging / MODEL_FILE, dynamic_axes=axes)
        if axes is None:
            typer.echo(f"inferred dynamic axes: inputs {info.spec.axes}, outputs {info.output_axes}", err=True)
        report = judge(verify(model, info, example))
        table = format_table(report)
        (staging / REPORT_JSON).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        (staging / REPORT_TEXT).write_text(table + "\n", encoding="utf-8")
        cpu = next(r for r in report.backends if r.name == "ort-cpu")
        if cpu.status != "passed":
            # Only the report is kept: a model that fails parity on ONNX Runtime must not be picked up and served.
            (staging / MODEL_FILE).unlink()
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    typer.echo(table)
    if cpu.status != "passed":
        raise ParityError(f"ONNX Runtime CPU does not match PyTorch: {cpu.reason}. See {out / REPORT_TEXT}.")
