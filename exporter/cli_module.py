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

__all__ = ["export_module_command", "load_factory"]

MODEL_FILE = "model.onnx"
REPORT_JSON = "parity.json"
REPORT_TEXT = "parity.txt"


def load_factory(target: str) -> tuple[Any, tuple[Any, ...], dict[str, dict[int, str]] | None]:
    """Import ``FILE.py:FACTORY`` and call it.

    Returns:
        ``(model, example_inputs, dynamic_axes or None)``.

    Raises:
        ExportError: Bad target, missing file or factory, or a factory returning something else.
    """
    file, sep, name = target.rpartition(":")
    path = Path(file)
    if not sep or not name or path.suffix != ".py":
        raise ExportError(f"Target {target!r} is not FILE.py:FACTORY, e.g. model.py:make_model.")
    if not path.is_file():
        raise ExportError(f"Model file {file} does not exist.")
    module_name = f"lstm_onnx_user_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ExportError(f"Cannot import {file} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    # Registered so the export can find (and patch) the names the model's module binds.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ExportError(f"{file} has no callable {name!r}; define def {name}(): return model, example_inputs.")
    made = factory()
    if not isinstance(made, tuple) or len(made) not in (2, 3):
        raise ExportError(f"{name}() returned {type(made).__name__}; return (model, example_inputs[, dynamic_axes]).")
    model, example, *rest = made
    example = example if isinstance(example, tuple) else (example,)
    return model, example, (rest[0] if rest else None)


def export_module_command(
    target: Annotated[str, typer.Argument(help="FILE.py:FACTORY; FACTORY() returns (model, example_inputs[, axes]).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write model.onnx and the parity report to.")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace --out if it exists.")] = False,
) -> None:
    """Export a PyTorch RNN model (nn.LSTM/nn.GRU) to ONNX and prove parity on every backend."""
    from lstm_onnx.exporter.module_export import export_module
    from lstm_onnx.exporter.module_verify import format_table, judge, verify

    if out.exists() and not force:
        raise ExportError(f"{out} already exists; pass --force to replace it.")
    model, example, axes = load_factory(target)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
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
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    typer.echo(table)
    cpu = next(r for r in report.backends if r.name == "ort-cpu")
    if cpu.status != "passed":
        raise ParityError(f"ONNX Runtime CPU does not match PyTorch: {cpu.reason}. See {out / REPORT_TEXT}.")
