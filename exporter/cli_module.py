"""`lstm-onnx export-module FILE.py:FACTORY --out DIR`: export and verify anyone's PyTorch RNN model.

torch is imported inside the command only, so `lstm-onnx --help` stays torch-free.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from lstm_onnx.runtime.errors import ExportError, ParityError

__all__ = ["Factory", "check_out", "export_module_command", "load_factory"]

MODEL_FILE = "model.onnx"
REPORT_JSON = "parity.json"
REPORT_TEXT = "parity.txt"
OUTPUT_FILES = frozenset({MODEL_FILE, REPORT_JSON, REPORT_TEXT})


def _user_error(what: str, err: BaseException) -> ExportError:
    """One line for an exception raised by the user's code: what was being done, the type and first line."""
    first = str(err).splitlines()[0] if str(err) else ""
    return ExportError(f"{what} raised {type(err).__name__}{': ' + first if first else ''}")


@dataclass(frozen=True)
class Factory:
    """What ``FACTORY()`` returned, checked.

    Attributes:
        model: The module.
        example: Example inputs, in ``forward``'s order.
        dynamic_axes: ``torch.onnx.export``-style axes in the user's names, or ``None`` (measured).
        make_inputs: ``make_inputs(batch, length)`` for inputs with coupled sizes, or ``None``.
    """

    model: Any
    example: tuple[Any, ...]
    dynamic_axes: dict[str, dict[int, str]] | None = None
    make_inputs: Callable[[int, int], Any] | None = None


def load_factory(target: str) -> Factory:
    """Import ``FILE.py:FACTORY`` and call it.

    ``FILE.py``'s folder is put first on ``sys.path`` while it is imported and the factory runs, as ``python
    FILE.py`` would, so a model file can import its siblings. A ``make_inputs(batch, length)`` defined in the file
    is used for inputs with coupled sizes unless the factory returns one.

    Returns:
        The checked result (see ``_check_made`` for the shapes accepted).

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
    checked = _check_made(name, made)
    maker = getattr(module, "make_inputs", None)
    if checked.make_inputs is None and callable(maker):
        # A module-level make_inputs(batch, length) beside the factory counts as returned by it.
        checked = replace(checked, make_inputs=maker)
    return checked


_SHAPE = "return (model, example_inputs[, dynamic_axes][, make_inputs]) or a dict with those keys"


def _check_axes(name: str, axes: Any) -> dict[str, dict[int, str]] | None:
    """The axes in dict form (torch.onnx's list form ``{"x": [0, 1]}`` named ``x_dim0``, ``x_dim1``)."""
    if axes is None:
        return None
    if isinstance(axes, dict) and all(isinstance(k, str) for k in axes):
        out: dict[str, dict[int, str]] = {}
        for key, value in axes.items():
            if isinstance(value, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in value):
                out[key] = {a: f"{key}_dim{a}" for a in value}
            elif isinstance(value, dict) and all(
                isinstance(a, int) and not isinstance(a, bool) and isinstance(n, str) and n for a, n in value.items()
            ):
                out[key] = dict(value)
            else:
                break
        else:
            return out
    raise ExportError(
        f"{name}() returned dynamic_axes {str(axes)[:80]!r}; expected {{input name: {{axis: axis name}}}}, "
        "e.g. {'text': {0: 'batch', 1: 'seq'}, 'lengths': {0: 'batch'}}."
    )


def _check_made(name: str, made: Any) -> Factory:
    """Check the factory's result has a documented shape (types of the parts are checked by ``export_module``)."""
    if isinstance(made, dict):
        unknown = sorted(set(made) - {"model", "example_inputs", "dynamic_axes", "make_inputs"})
        if unknown or "model" not in made or "example_inputs" not in made:
            raise ExportError(f"{name}() returned a dict with keys {sorted(made)}; {_SHAPE}.")
        model, example = made["model"], made["example_inputs"]
        axes, maker = made.get("dynamic_axes"), made.get("make_inputs")
    elif isinstance(made, tuple) and 2 <= len(made) <= 4:
        model, example, *rest = made
        makers = [r for r in rest if callable(r) and not isinstance(r, dict)]
        others = [r for r in rest if r not in makers]
        if len(makers) > 1 or len(others) > 1:
            raise ExportError(f"{name}() returned a {len(made)}-tuple it cannot read; {_SHAPE}.")
        axes = others[0] if others else None
        maker = makers[0] if makers else None
    else:
        kind = f"a {len(made)}-tuple" if isinstance(made, tuple) else f"a {type(made).__name__}"
        raise ExportError(f"{name}() returned {kind}; {_SHAPE}.")
    if isinstance(example, list):
        example = tuple(example)
    elif not isinstance(example, tuple):
        example = (example,)
    if maker is not None and not callable(maker):
        raise ExportError(
            f"{name}() returned make_inputs of type {type(maker).__name__}; give a function (batch, length)."
        )
    return Factory(model, example, _check_axes(name, axes), maker)


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
    target: Annotated[
        str,
        typer.Argument(
            help="FILE.py:FACTORY; FACTORY() returns (model, example_inputs[, dynamic_axes][, make_inputs])."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write model.onnx and the parity report to.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace --out if it exists.")] = False,
    opset: Annotated[int, typer.Option("--opset", min=14, max=23, help="ONNX opset (14 or newer).")] = 17,
    grid: Annotated[
        str | None,
        typer.Option(
            "--grid",
            help="B:T points to prove parity on, comma-separated; T in steps or as a multiple of the example's "
            "length (1:0.5x,8:3x,2:400). Default: around the example.",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Ways to try, in order, comma-separated: lowering (the toolkit's), torchscript, dynamo (torch.onnx).",
        ),
    ] = "lowering,torchscript,dynamo",
) -> None:
    """Export a PyTorch RNN model (nn.LSTM/nn.GRU/nn.RNN) to ONNX and prove parity on every backend."""
    from lstm_onnx.exporter.module_export import check_opset, export_module
    from lstm_onnx.exporter.module_verify import format_table, judge, verify

    check_opset(opset)
    methods = tuple(m.strip() for m in method.split(",") if m.strip())
    check_out(out, force)
    made = load_factory(target)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"Cannot create the folder of --out {out}: {err.strerror} ({err.filename}).") from err
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{out.name}.") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        info = export_module(
            made.model,
            made.example,
            staging / MODEL_FILE,
            dynamic_axes=made.dynamic_axes,
            opset=opset,
            make_inputs=made.make_inputs,
            grid=grid,
            methods=methods,
        )
        if made.dynamic_axes is None:
            typer.echo(f"measured dynamic axes: inputs {info.spec.axes}, outputs {info.output_axes}", err=True)
        for attempt in info.attempts:
            if attempt.outcome != "passed":
                typer.echo(f"{attempt.method} not used: {attempt.reason}", err=True)
        report = judge(verify(made.model, info, made.example))
        table = format_table(report)
        document = {**report.to_dict(), "attempts": [asdict(a) for a in info.attempts], "opset": info.opset}
        (staging / REPORT_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
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
