"""export_module: anyone's PyTorch RNN model → ``model.onnx`` that matches it on shapes the export never saw, or a
one-line refusal with the measured reason.

Three ways to a graph are tried in order, and the first whose graph matches the eager model on ONNX Runtime over
the whole grid (batch sizes and lengths around the example's, the shortest accepted length included) is kept:

1. ``lowering``: the toolkit's own. While ``torch.onnx.export`` traces (TorchScript), every ``nn.LSTM``/``nn.GRU``/
   ``nn.RNN`` instance computes through ``rnn_nodes.LoweredForward`` (one ONNX node per layer, fed
   ``sequence_lens``), ``pack_padded_sequence``/``pad_packed_sequence`` become versions that carry (padded data,
   lengths) through to it, and ``len(tensor)`` in the model's own code stays a graph value instead of the example's
   number. The model itself is untouched: its modules keep their class, weights and methods; everything is put
   back afterwards, also on failure.
2. ``torchscript``: plain ``torch.onnx.export(dynamo=False)`` (with the same ``len`` fix): torch's own RNN symbolics,
   sort/unsort included.
3. ``dynamo``: ``torch.onnx.export(dynamo=True)``, which captures Python sizes symbolically.

Nothing is refused on suspicion: TracerWarnings and unusual ops (``If``, ``Loop``, ``TopK``) are notes in the report.
A graph is refused only when parity disproves it; when no way passes, the line names each way's failure and, where
one is seen, the likely cause (an RNN cell stepped by a Python loop, a recurrent module that is not a torch RNN, a
TorchScript module).
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import re
import sys
import time
import types
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn
from torch.nn.utils import rnn as rnn_utils

from lstm_onnx.exporter.module_inputs import (
    Axes,
    GridPoint,
    InputMaker,
    InputSpec,
    default_grid,
    flatten_outputs,
    infer_spec,
    output_names_of,
    parse_grid,
    refuse_frozen_dims,
    run_module,
)
from lstm_onnx.exporter.module_parity import Case, make_cases, measure_cases
from lstm_onnx.exporter.rnn_nodes import LoweredForward, LoweredRNN, PaddedPack, is_padded_pack
from lstm_onnx.exporter.tolerances import FP32
from lstm_onnx.runtime.errors import ExportError

__all__ = [
    "DEFAULT_OPSET",
    "FORBIDDEN_OPS",
    "METHODS",
    "MIN_OPSET",
    "Attempt",
    "ModuleExport",
    "check_opset",
    "export_module",
]

# ONNX LSTM/GRU have had layout and sequence_lens since opset 14; 17 is the lowest opset every ORT >= 1.12 serves
# and the one ORT's quantization tools handle best.
DEFAULT_OPSET = 17
MIN_OPSET = 14
METHODS = ("lowering", "torchscript", "dynamo")

# Ops that the toolkit's own classifier and tagger graphs must not hold (exporter/export.py's check_graph). In a
# user's graph they are only noted: parity decides.
FORBIDDEN_OPS = frozenset({"TopK", "ScatterElements", "ScatterND", "Loop", "Scan", "If", "NonZero"})


@dataclass(frozen=True)
class Attempt:
    """One way to a graph, tried.

    Attributes:
        method: ``lowering``, ``torchscript`` or ``dynamo``.
        outcome: ``passed`` (kept), ``failed`` (a graph that parity disproved), ``error`` (no graph) or ``skipped``.
        reason: Why it failed, in one line (empty when passed).
        seconds: Time spent, export and parity.
        worst: Largest |Δ| on ONNX Runtime over the grid (``None`` without a graph).
    """

    method: str
    outcome: str
    reason: str = ""
    seconds: float = 0.0
    worst: float | None = None


@dataclass(frozen=True)
class ModuleExport:
    """What ``export_module`` wrote.

    Attributes:
        path: The ``.onnx`` file.
        spec: Input names, dynamic axes (inferred ones included), lengths, and how inputs of any shape are made.
        output_names: ONNX output names, in order.
        output_axes: Dynamic axes of every output.
        rnn_nodes: ``(module name, kind, layers)`` of every torch RNN in the model.
        opset: ONNX opset.
        method: The way that made the graph (see the module docstring).
        attempts: Every way tried, in order.
        grid: (B, T) points the graph was checked on.
        notes: What was seen and not held against the graph (TracerWarnings, unusual ops, inferred axes).
    """

    path: Path
    spec: InputSpec
    output_names: tuple[str, ...]
    output_axes: Axes
    rnn_nodes: tuple[tuple[str, str, int], ...]
    opset: int
    method: str = "lowering"
    attempts: tuple[Attempt, ...] = ()
    grid: tuple[GridPoint, ...] = ()
    notes: tuple[str, ...] = field(default=())


def check_opset(opset: int) -> None:
    """Refuse an opset older than ``MIN_OPSET``.

    Raises:
        ExportError: Names the opset and the minimum.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"Opset {opset} is too old: ONNX LSTM/GRU need layout/sequence_lens (opset >= {MIN_OPSET}).")


def _pack_padded(
    input: torch.Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PaddedPack:
    """``pack_padded_sequence`` made traceable: nothing is packed, the lengths travel along (sorting is moot)."""
    lens = lengths if isinstance(lengths, torch.Tensor) else torch.as_tensor(lengths)
    return PaddedPack(input.transpose(0, 1) if batch_first else input, lens.to(torch.int64))  # (T, B, F)


def _pad_packed(
    sequence: Any, batch_first: bool = False, padding_value: float = 0.0, total_length: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pad_packed_sequence`` made traceable: (T', B, F) with ``padding_value`` past each length.

    T' is ``total_length`` when given, else the longest length, as torch's; both are graph values, never the
    example's numbers. A sequence torch itself packed goes to torch's own function.
    """
    if not is_padded_pack(sequence):
        return _ORIGINALS["pad_packed_sequence"](sequence, batch_first, padding_value, total_length)  # type: ignore[no-any-return]
    data, lens = sequence.data, sequence.batch_sizes
    steps = torch.arange(lens.max() if total_length is None else total_length)  # type: ignore[arg-type]
    data = data.index_select(0, steps)
    valid = (steps.view(-1, 1) < lens.view(1, -1)).unsqueeze(-1)  # (T', B, 1)
    data = data.masked_fill(~valid, padding_value)
    return (data.transpose(0, 1) if batch_first else data), lens


_ORIGINALS: dict[str, Any] = {
    "pack_padded_sequence": rnn_utils.pack_padded_sequence,
    "pad_packed_sequence": rnn_utils.pad_packed_sequence,
}
_STAND_INS: dict[str, Any] = {"pack_padded_sequence": _pack_padded, "pad_packed_sequence": _pad_packed}


def _traced_len(obj: Any) -> Any:
    """``len`` that, while tracing, keeps a tensor's first size a graph value (torch's ``Tensor.__len__`` returns the
    example's number and warns). Anything else, and any call outside tracing, is the builtin's."""
    if isinstance(obj, torch.Tensor) and obj.dim() > 0 and torch._C._get_tracing_state() is not None:
        return obj.shape[0]
    return builtins.len(obj)


def _rnn_records(model: nn.Module) -> list[tuple[str, str, int]]:
    records = []
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            records.append((name or "<root>", type(module).__name__, module.num_layers))
        elif isinstance(module, LoweredRNN):
            records.append((name or "<root>", module.lowered_op, module.lowered_layers))
    return records


def _likely_cause(model: nn.Module) -> str:
    """What in the model explains a failure on every way: cells, a hand-written recurrence, TorchScript."""
    if isinstance(model, torch.jit.ScriptModule) or any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        return "a TorchScript module (no nn.Module source to trace; export the Python model instead)"
    cells = [n for n, m in model.named_modules() if isinstance(m, nn.RNNCellBase)]
    if cells:
        return (
            f"{cells[0]} ({type(model.get_submodule(cells[0])).__name__}) is an RNN cell stepped by a Python loop, "
            "which unrolls to the example's length (use nn.LSTM/nn.GRU over the whole sequence)"
        )
    custom = [
        (n, type(m).__name__)
        for n, m in model.named_modules()
        if not isinstance(m, (nn.RNNBase, LoweredRNN))
        and any(k in type(m).__name__.upper() for k in ("LSTM", "GRU", "RNN"))
        and not any(isinstance(c, (nn.RNNBase, LoweredRNN)) for c in m.modules())
    ]
    if custom:
        return (
            f"{custom[0][0] or '<root>'} ({custom[0][1]}) is a recurrent module written by hand, not nn.LSTM/nn.GRU/"
            "nn.RNN: its Python loop over time unrolls to the example's length"
        )
    return ""


def _user_namespaces(model: nn.Module, everywhere: bool) -> list[dict[str, Any]]:
    """Namespaces of the modules whose code the model runs (``everywhere``: every loaded module but torch's and this
    package's, for functions bound by name in helper modules the model imports)."""
    if everywhere:
        homes = [m for k, m in list(sys.modules.items()) if not k.startswith(("torch.", "torch", "lstm_onnx."))]
    else:
        names = {
            cls.__module__
            for m in model.modules()
            for cls in type(m).__mro__
            if not cls.__module__.startswith(("torch", "lstm_onnx.", "builtins"))
        }
        homes = [sys.modules[n] for n in names if n in sys.modules]
    lowered = {type(m).__module__ for m in model.modules() if isinstance(m, LoweredRNN)}
    return [vars(h) for h in homes if isinstance(h, types.ModuleType) and h.__name__ not in lowered]


@contextlib.contextmanager
def _patched(model: nn.Module, lower: bool) -> Iterator[list[LoweredForward]]:
    """While tracing: ``len`` kept symbolic in the model's own code; with ``lower``, every torch RNN instance's
    ``forward`` lowered and the packing functions made traceable. Everything is put back on exit."""
    forwards: list[tuple[nn.Module, LoweredForward]] = []
    if lower:
        for name, module in model.named_modules():
            if isinstance(module, nn.RNNBase):
                forwards.append((module, LoweredForward(module, name)))
    patched: list[tuple[dict[str, Any], str, Any]] = []
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        # Inference only: were parameters to require grad, the RNN Function's outputs would too, and the tracer
        # (paused inside the Function) would try to bake them into the graph as constants.
        model.requires_grad_(False)
        for module, forward in forwards:
            module.forward = forward  # type: ignore[method-assign]
        for namespace in _user_namespaces(model, everywhere=False):
            if namespace.get("len", builtins.len) is builtins.len:
                patched.append((namespace, "len", namespace.get("len", _MISSING)))
                namespace["len"] = _traced_len
        # User code binds the packing functions by name too (`from torch.nn.utils.rnn import pack_padded_sequence`),
        # in the model's file or a helper it imports: patch every such binding, and torch's own attribute.
        for namespace in [vars(rnn_utils), *_user_namespaces(model, everywhere=True)] if forwards else []:
            for key, value in list(namespace.items()):
                for fn_name, original in _ORIGINALS.items():
                    if value is original:
                        patched.append((namespace, key, value))
                        namespace[key] = _STAND_INS[fn_name]
        yield [f for _, f in forwards]
    finally:
        for param, flag in grads:
            param.requires_grad_(flag)
        for namespace, key, value in reversed(patched):
            if value is _MISSING:
                namespace.pop(key, None)
            else:
                namespace[key] = value
        for module, _ in forwards:
            vars(module).pop("forward", None)


_MISSING = object()
_TORCH_PLEA = " Please feel free to request support or submit a pull request on PyTorch GitHub: https://github.com/pytorch/pytorch/issues"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Flat(nn.Module):
    """Calls the user's module with exactly the example's positional inputs and returns its outputs flattened.

    Only used when needed: torch.onnx's TorchScript path appends the defaults of every further ``forward`` parameter
    (keyword-only ones included) as positional arguments, and cannot return a dict or an ``nn.Parameter`` (a CRF's
    transition matrix). Wrapping prefixes initializer names with ``model.``, so a plain module is exported as itself.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> Any:
        out = [t * 1 if isinstance(t, nn.Parameter) else t for t in _flat_values(self.model(*inputs))]
        return out[0] if len(out) == 1 else tuple(out)


def _flat_values(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flat_values(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flat_values(item)]
    return []


def _needs_flat(model: nn.Module, example: Sequence[torch.Tensor], eager_value: Any) -> bool:
    params = inspect.signature(model.forward).parameters
    return (
        len(params) != len(example)
        or not isinstance(eager_value, (torch.Tensor, tuple, list))
        or (isinstance(eager_value, (tuple, list)) and any(isinstance(v, (dict, list)) for v in eager_value))
        or any(isinstance(t, nn.Parameter) for t in _flat_values(eager_value))
    )


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor a module keeps besides its parameters: buffers and plain tensor attributes, copied."""
    state = {
        f"{n}.{k}" if n else k: b.detach().clone()
        for n, m in model.named_modules()
        for k, b in m._buffers.items()
        if b is not None
    }
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                state[f"{name}.{key}" if name else key] = value.detach().clone()
    return state


def _refuse_stateful(model: nn.Module, example: Sequence[torch.Tensor]) -> Any:
    """``forward``'s result for the example, after refusing a model that keeps state between calls."""
    before = _state(model)
    value = run_module(model, example, "the example inputs")
    first = flatten_outputs(value)
    second = flatten_outputs(run_module(model, example, "the example inputs (a second call)"))
    after = _state(model)
    changed = sorted(
        k
        for k in before.keys() | after.keys()
        if k not in before or k not in after or not torch.equal(before[k], after[k])
    )
    same = all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second, strict=True))
    if changed or not same:
        where = f" (changed: {', '.join(changed[:3])})" if changed else ""
        raise ExportError(
            f"Cannot export {type(model).__name__}: it carries state between calls{where}; two calls on the same "
            "input differ. Pass the state as an input instead."
        )
    return value


def _output_axes(model: nn.Module, spec: InputSpec, arrays: list[np.ndarray[Any, Any]], names: Sequence[str]) -> Axes:
    """Output axes found by running the eager model at a second shape: a dim that follows an input dimension takes
    its name; any other dim that moves is named ``<output>_dim<d>``."""
    b0 = spec.example_batch or 1
    t0 = spec.example_length or 1
    second = spec.case(arrays, b0 + 3, max(spec.min_length, 2 * t0 + 1), np.random.default_rng(0))
    first_out = flatten_outputs(run_module(model, [torch.from_numpy(a) for a in arrays], "the example inputs"))
    second_out = flatten_outputs(
        run_module(model, [torch.from_numpy(a) for a in second], "inputs resized to another batch size and length")
    )
    second_sizes: dict[str, int] = {}
    for name, array in zip(spec.names, second, strict=True):
        for axis, label in spec.axes.get(name, {}).items():
            second_sizes.setdefault(label, int(array.shape[axis]))
    axes: Axes = {}
    for name, a, b in zip(names, first_out, second_out, strict=True):
        moved = {}
        for d in range(a.dim()):
            if d < b.dim() and a.shape[d] != b.shape[d]:
                sizes = (a.shape[d], b.shape[d])
                follows = [lbl for lbl, n in spec.sizes.items() if (n, second_sizes.get(lbl)) == sizes]
                label = follows[0] if follows else f"{name}_dim{d}"
                moved[d] = label
        if moved:
            axes[name] = moved
    return axes


def export_module(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: Path,
    *,
    dynamic_axes: Axes | None = None,
    output_names: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    make_inputs: InputMaker | None = None,
    grid: Sequence[GridPoint] | str | None = None,
    methods: Sequence[str] = METHODS,
) -> ModuleExport:
    """Export a user's RNN model to ONNX, proven on shapes the export never saw, or refuse in one line.

    Args:
        model: Any ``nn.Module`` (put in eval mode: a warning says so when it was training; otherwise left
            unchanged). ``forward`` may return a tensor or a (nested) tuple, list or dict of tensors, and may take
            further parameters with defaults.
        example_inputs: Tensors in ``forward``'s order, e.g. ids int64 (B, T) and lengths int64 (B).
        path: Target ``.onnx`` file.
        dynamic_axes: ``torch.onnx.export``-style axes keyed by ``forward``'s parameter names (inputs and, if
            wanted, outputs), in the user's own names; measured when ``None`` (see ``module_inputs``).
        output_names: ONNX output names; default ``output``, or ``output_0``, ``output_1``, ... for a tuple, or a
            dict's keys.
        opset: ONNX opset (>= 14, for LSTM/GRU ``layout`` and ``sequence_lens``).
        make_inputs: ``make_inputs(batch, length)`` → inputs in ``forward``'s order, for inputs whose sizes are
            coupled (the example must be one of its results).
        grid: (B, T) points to check the graph on, or their text form (``module_inputs.parse_grid``: ``"1:0.5x,8:3x"``);
            default ``module_inputs.default_grid``. A point the eager model fails at raises.
        methods: Ways to try, in order (see the module docstring).

    Returns:
        What was written, with the way that made it and every way tried.

    Raises:
        ExportError: No way gives a graph that matches the model on the grid (each way's reason in the line), the
            model keeps state between calls, or the inputs are not what ``forward`` takes.
    """
    check_opset(opset)
    if not isinstance(model, nn.Module):
        raise ExportError(
            f"The model is a {type(model).__name__}, not a torch.nn.Module; export_module exports modules."
        )
    unknown_methods = sorted(set(methods) - set(METHODS))
    if unknown_methods or not methods:
        raise ExportError(f"Unknown export method(s) {unknown_methods or list(methods)}; choose from {list(METHODS)}.")
    for name, module in model.named_modules():
        if isinstance(module, LoweredRNN) and (module.lowered_op not in ("LSTM", "GRU") or module.lowered_layers < 1):
            raise ExportError(
                f"Cannot export {name or '<root>'} ({type(module).__name__}): a LoweredRNN must emit >= 1 LSTM/GRU "
                f"node, it declares {module.lowered_layers} {module.lowered_op!r}."
            )
    example = tuple(example_inputs)
    if model.training:
        warnings.warn(
            f"{type(model).__name__} was in training mode; it is exported (and left) in eval mode: dropout off, "
            "batch-norm statistics frozen.",
            stacklevel=2,
        )
    model.eval()
    for value in example:
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"An example input is a {type(value).__name__}; pass tensors, in forward's order.")
    eager_value = _refuse_stateful(model, example)
    spec = infer_spec(model, example, dynamic_axes, make_inputs)
    eager = flatten_outputs(eager_value)
    names = tuple(output_names) if output_names else output_names_of(eager_value)
    if len(names) != len(eager) or len(set(names)) != len(names):
        raise ExportError(f"Output names {list(names)} do not name {len(eager)} outputs once each.")
    unknown = sorted(set(dynamic_axes or {}) - set(spec.names) - set(names))
    if unknown:
        raise ExportError(
            f"dynamic_axes names {unknown}, which is neither an input ({', '.join(spec.names)}) nor an output "
            f"({', '.join(names)})."
        )
    arrays = [np.ascontiguousarray(t.detach().cpu().numpy()) for t in example]
    if dynamic_axes is not None:
        refuse_frozen_dims(model, spec, arrays)
    out_axes = _output_axes(model, spec, arrays, names)
    if dynamic_axes is not None:
        out_axes = {**out_axes, **{k: dict(v) for k, v in dynamic_axes.items() if k in names}}
    points = (
        parse_grid(grid, spec) if isinstance(grid, str) else tuple(grid) if grid is not None else default_grid(spec)
    )
    cases, dropped = make_cases(model, spec, arrays, points, strict=grid is not None)
    notes = [*spec.notes, *dropped]
    records = _rnn_records(model)
    if not records:
        notes.append("no nn.LSTM/nn.GRU/nn.RNN in the model")
    if any(isinstance(m, LoweredRNN) for m in model.modules()):
        methods = ("lowering",)  # it lowers itself: the toolkit's own export twins, held to their declared nodes
    attempts: list[Attempt] = []
    target = _Flat(model).eval() if _needs_flat(model, example, eager_value) else model
    for method in methods:
        started = time.perf_counter()
        trial = path.with_name(f".{path.name}.{method}.tmp")
        try:
            seen = _export_with(method, model, target, example, trial, spec, names, {**spec.axes, **out_axes}, opset)
            notes.extend(f"{method}: {n}" for n in seen)
            worst, reason = _parity(trial, spec, names, out_axes, cases)
        except ExportError as err:
            attempts.append(Attempt(method, "error", str(err), time.perf_counter() - started))
            trial.unlink(missing_ok=True)
            continue
        if reason:
            attempts.append(Attempt(method, "failed", reason, time.perf_counter() - started, worst))
            trial.unlink(missing_ok=True)
            continue
        attempts.append(Attempt(method, "passed", "", time.perf_counter() - started, worst))
        trial.replace(path)
        return ModuleExport(
            path, spec, names, out_axes, tuple(records), opset, method, tuple(attempts), points, tuple(notes)
        )
    path.unlink(missing_ok=True)  # never leave an earlier graph where a caller could take it for this one
    cause = _likely_cause(model) or next((n.split(": ", 1)[1] for n in notes if "TracerWarning" in n), "")
    tried = "; ".join(f"{a.method}: {a.reason}" for a in attempts)
    raise ExportError(
        f"Cannot export {type(model).__name__}: no way gives a graph that matches it ({tried})"
        + (f". Likely cause: {cause}." if cause else ".")
    )


def _export_with(
    method: str,
    model: nn.Module,
    target: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    spec: InputSpec,
    names: Sequence[str],
    axes: Axes,
    opset: int,
) -> list[str]:
    """Write ``path`` the way ``method`` says; return notes (TracerWarnings, unusual ops).

    Raises:
        ExportError: No graph came out (one line: the exception's type and first line).
    """
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        try:
            if method == "dynamo":
                # Dim.AUTO on every dynamic axis: torch.export finds the relations between them itself, and what it
                # specializes shows up as a parity failure at the grid's other sizes.
                shapes = [{a: torch.export.Dim.AUTO for a in spec.axes.get(n, {})} for n in spec.names]
                params = list(inspect.signature(target.forward).parameters)
                dynamic = (
                    {params[0]: tuple(shapes)} if isinstance(target, _Flat) else dict(zip(params, shapes, strict=False))
                )
                torch.onnx.export(
                    target,
                    example,
                    str(path),
                    dynamo=True,
                    opset_version=max(opset, 18),
                    input_names=list(spec.names),
                    output_names=list(names),
                    dynamic_shapes=dynamic,
                    external_data=False,
                    optimize=True,
                    verbose=False,
                )
            else:
                with _patched(model, lower=method == "lowering") as lowered:
                    declared = sum(m.lowered_layers for m in model.modules() if isinstance(m, LoweredRNN))
                    if method == "lowering" and not lowered and not declared:
                        raise ExportError("no nn.LSTM/nn.GRU/nn.RNN to lower")
                    torch.onnx.export(
                        target,
                        example,
                        str(path),
                        dynamo=False,
                        opset_version=opset,
                        input_names=list(spec.names),
                        output_names=list(names),
                        dynamic_axes=axes,
                        do_constant_folding=True,
                        keep_initializers_as_inputs=False,
                    )
        except ExportError:
            raise
        # The eager model ran on this input already, so whatever fails here failed in the export machinery (or in
        # user code the stand-ins reached); one line names it, the traceback stays chained.
        except Exception as err:  # noqa: BLE001
            root = err
            while root.__cause__ is not None and type(root).__module__.startswith("torch.onnx"):
                root = root.__cause__  # torch.onnx wraps the real failure in a generic "step 1/3" error
            text = _ANSI.sub("", str(root)).split("  [Caused by")[0].replace(_TORCH_PLEA, "").strip()
            first = text.splitlines()[0] if text else ""
            raise ExportError(f"{type(root).__name__}: {first[:300]}") from err
    try:
        graph = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(graph)
    except Exception as err:  # noqa: BLE001 - any failure to read back is a broken graph
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ExportError(f"the graph is invalid: {first}") from err
    if method == "lowering":
        expected = declared + sum(f.num_layers * f.calls for f in lowered)
        found = sum(1 for n in graph.graph.node if n.op_type in ("LSTM", "GRU", "RNN"))
        if found != expected:
            raise ExportError(
                f"Expected {expected} ONNX LSTM/GRU/RNN node(s) (one per layer and call), found {found}: an RNN was "
                "traced in a form the lowering does not recognise."
            )
    notes = []
    tracer_warning: type[Warning] = torch.jit.TracerWarning  # type: ignore[attr-defined]
    seen = {
        f"{str(w.message).splitlines()[0][:160]} ({Path(w.filename).name}:{w.lineno})"
        for w in caught
        if issubclass(w.category, tracer_warning)
    }
    notes.extend(f"TracerWarning: {m}" for m in sorted(seen)[:3])
    ops = sorted({n.op_type for n in graph.graph.node} & FORBIDDEN_OPS)
    if ops:
        notes.append(f"graph holds {', '.join(ops)} (judged by parity, not refused)")
    return notes


def _parity(
    path: Path, spec: InputSpec, names: Sequence[str], out_axes: Axes, cases: list[Case]
) -> tuple[float | None, str]:
    """ONNX Runtime CPU against the eager outputs over every case: (largest |Δ|, why it fails or "")."""
    from lstm_onnx.exporter.backends import OrtBackend

    record = measure_cases(OrtBackend("ort-cpu", path), cases, spec, names, out_axes)
    if record.status == "error":
        return None, record.reason
    failures = record.failures(FP32)
    return record.worst(), "; ".join(failures)
