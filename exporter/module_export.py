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

import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstm_onnx.exporter.module_inputs import (
    Axes,
    GridPoint,
    InputMaker,
    InputSpec,
    default_grid,
    flat_inputs,
    flatten_outputs,
    infer_spec,
    output_names_of,
    parse_grid,
    refuse_frozen_dims,
    run_module,
)
from lstm_onnx.exporter.module_parity import Case, make_cases, measure_cases
from lstm_onnx.exporter.module_trace import FORBIDDEN_OPS, Flat, export_graph, needs_flat
from lstm_onnx.exporter.rnn_nodes import LoweredRNN
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
# An operator that needs a newer opset than asked for raises it up to this (torch.onnx's TorchScript path tops at 20).
MAX_OPSET = 20
_NEEDS_OPSET = re.compile(r"added in version (\d+)")
METHODS = ("lowering", "torchscript", "dynamo")
# Estimated eager seconds the default grid may take (each way's ONNX Runtime check costs about as much again).
GRID_BUDGET_S = 20.0


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
        fixed_batch: The batch is fixed at 1 (a Python loop over the batch): ``example`` is then one item.
        example: The (flat) example the graph was traced with.
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
    fixed_batch: bool = False
    example: tuple[torch.Tensor, ...] = field(default=(), repr=False, compare=False)


def check_opset(opset: int) -> None:
    """Refuse an opset older than ``MIN_OPSET``.

    Raises:
        ExportError: Names the opset and the minimum.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"Opset {opset} is too old: ONNX LSTM/GRU need layout/sequence_lens (opset >= {MIN_OPSET}).")


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
    custom = sorted(
        (
            (not any(k in type(m).__name__.upper() for k in ("LSTM", "GRU")), -n.count("."), n, type(m).__name__)
            for n, m in model.named_modules()
            if not isinstance(m, (nn.RNNBase, LoweredRNN))
            and any(k in type(m).__name__.upper() for k in ("LSTM", "GRU", "RNN"))
            and not any(isinstance(c, (nn.RNNBase, LoweredRNN)) for c in m.modules())
        )
    )
    if custom:
        _, _, where, kind = custom[0]
        return (
            f"{where or '<root>'} ({kind}) is a recurrent module written by hand, not nn.LSTM/nn.GRU/nn.RNN: its "
            "Python loop over time unrolls to the example's length"
        )
    return ""


def _state(model: nn.Module) -> dict[str, torch.Tensor | None]:
    """Every tensor a module keeps besides its parameters, copied: buffers, and plain attributes holding a tensor, a
    tuple/list of tensors (an RNN state ``(h, c)``) or ``None`` (a state not yet set)."""
    state: dict[str, torch.Tensor | None] = {
        f"{n}.{k}" if n else k: b.detach().clone()
        for n, m in model.named_modules()
        for k, b in m._buffers.items()
        if b is not None
    }
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            where = f"{name}.{key}" if name else key
            if key.startswith("_"):
                continue
            if value is None:
                state[where] = None
            elif isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                state[where] = value.detach().clone()
            elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
                state.update({f"{where}[{i}]": v.detach().clone() for i, v in enumerate(value)})
    return state


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and torch.equal(a, b)


def _refuse_stateful(model: nn.Module, example: Sequence[torch.Tensor]) -> Any:
    """``forward``'s result for the example, after refusing a model that keeps state between calls."""
    before = _state(model)
    value = run_module(model, example, "the example inputs")
    first = flatten_outputs(value)
    second = flatten_outputs(run_module(model, example, "the example inputs (a second call)"))
    after = _state(model)
    changed = sorted(
        k for k in before.keys() | after.keys() if k not in before or k not in after or not _same(before[k], after[k])
    )
    same = all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second, strict=True))
    if changed:
        raise ExportError(
            f"Cannot export {type(model).__name__}: it carries state between calls (changed: "
            f"{', '.join(changed[:3])}); two calls on the same input differ. Pass the state as an input instead."
        )
    if not same:
        cause = _likely_cause(model)
        raise ExportError(
            f"Cannot export {type(model).__name__}: two calls on the same input give different outputs, with no state "
            "kept: something random runs in eval mode (dropout applied with training=True, sampling)"
            + (f"; and {cause}." if cause else ". Make forward deterministic in eval mode.")
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
        example_inputs: Tensors in ``forward``'s order, e.g. ids int64 (B, T) and lengths int64 (B); a tuple of
            tensors (an RNN state ``(h, c)``) becomes one ONNX input per tensor (``hidden_0``, ``hidden_1``).
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
    if model.training:
        warnings.warn(
            f"{type(model).__name__} was in training mode; it is exported (and left) in eval mode: dropout off, "
            "batch-norm statistics frozen.",
            stacklevel=2,
        )
    model.eval()
    model, example = flat_inputs(model, tuple(example_inputs))
    for value in example:
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"An example input is a {type(value).__name__}; pass tensors, in forward's order.")
    started = time.perf_counter()
    eager_value = _refuse_stateful(model, example)
    example_seconds = (time.perf_counter() - started) / 2
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
    over: list[str] = []
    if grid is None:
        points, over = _within_budget(default_grid(spec), spec, example_seconds)
    else:
        points = parse_grid(grid, spec) if isinstance(grid, str) else tuple(grid)
    cases, dropped = make_cases(model, spec, arrays, points, strict=grid is not None)
    notes = [*spec.notes, *over, *dropped]
    records = _rnn_records(model)
    if not records:
        notes.append("no nn.LSTM/nn.GRU/nn.RNN in the model")
    if any(isinstance(m, LoweredRNN) for m in model.modules()):
        methods = ("lowering",)  # it lowers itself: the toolkit's own export twins, held to their declared nodes
    target = Flat(model).eval() if needs_flat(model, example, eager_value) else model
    trial = _Trial(model, target, path, names, opset)
    attempts, made = trial.run(methods, example, spec, out_axes, cases, notes)
    if made is None and spec.batch is not None:
        # Every way failed with a dynamic batch: a Python loop over the batch (flair's per-sentence slicing) is right
        # for one batch size only. One item at a time is then a graph of its own, proven on the grid at B=1.
        fixed = _fixed_batch(spec)
        one = [torch.from_numpy(a) for a in spec.case(arrays, 1, spec.example_length or 1, np.random.default_rng(0))]
        fixed_points = tuple(dict.fromkeys((1, t) for _, t in points))
        arrays_one = [t.numpy() for t in one]
        fixed_cases, _ = make_cases(model, fixed, arrays_one, fixed_points, strict=False)
        fixed_axes = {k: {d: n for d, n in v.items() if n != spec.batch} for k, v in out_axes.items()}
        fixed_axes = {k: v for k, v in fixed_axes.items() if v}
        more, made = trial.run(
            [m for m in methods if m != "dynamo"], tuple(one), fixed, fixed_axes, fixed_cases, notes, " at batch 1"
        )
        attempts += more
        if made is not None:
            notes.append(
                f"batch fixed at 1: with a dynamic batch no way matches PyTorch ({attempts[0].reason[:200]}); "
                "the graph takes one item at a time"
            )
            spec, out_axes, points, example = fixed, fixed_axes, fixed_points, tuple(one)
    if made is not None:
        method, used = made
        return ModuleExport(
            path,
            spec,
            names,
            out_axes,
            tuple(records),
            used,
            method,
            tuple(attempts),
            points,
            tuple(notes),
            fixed_batch=spec.batch is None and bool(attempts) and attempts[-1].method.endswith("at batch 1"),
            example=example,
        )
    path.unlink(missing_ok=True)  # never leave an earlier graph where a caller could take it for this one
    cause = _likely_cause(model) or next((n.split(": ", 1)[1] for n in notes if "TracerWarning" in n), "")
    tried = "; ".join(f"{a.method}: {a.reason}" for a in attempts)
    raise ExportError(
        f"Cannot export {type(model).__name__}: no way gives a graph that matches it ({tried})"
        + (f". Likely cause: {cause}." if cause else ".")
    )


def _within_budget(
    points: tuple[GridPoint, ...], spec: InputSpec, example_seconds: float
) -> tuple[tuple[GridPoint, ...], list[str]]:
    """The default grid's points, cheapest first, while their estimated eager time (the example's, scaled by rows x
    steps) stays within ``GRID_BUDGET_S`` (a WaveRNN step costs ~1,000x a text classifier's); the three cheapest
    always stay, so short, long and other batch sizes are still seen."""
    b0, t0 = spec.example_batch or 1, spec.example_length or 1
    cost = {p: example_seconds * (p[0] if spec.batch else b0) * p[1] / (b0 * t0) for p in points}
    kept: list[GridPoint] = []
    total = 0.0
    for point in sorted(points, key=lambda p: cost[p]):
        if len(kept) < 3 or total + cost[point] <= GRID_BUDGET_S:
            kept.append(point)
            total += cost[point]
    left = [p for p in points if p not in kept]
    note = (
        [f"grid points over the {GRID_BUDGET_S:.0f} s budget left out (pass grid= to run them): {left}"] if left else []
    )
    return tuple(p for p in points if p in kept), note


def _fixed_batch(spec: InputSpec) -> InputSpec:
    """The spec with the batch axis made static (B = 1)."""
    axes = {k: {d: n for d, n in v.items() if n != spec.batch} for k, v in spec.axes.items()}
    sizes = {k: v for k, v in spec.sizes.items() if k != spec.batch}
    return replace(spec, axes={k: v for k, v in axes.items() if v}, batch=None, sizes=sizes)


class _Trial:
    """Tries ways to a graph in order and keeps the first that ONNX Runtime proves on the cases."""

    def __init__(self, model: nn.Module, target: nn.Module, path: Path, names: Sequence[str], opset: int) -> None:
        self.model, self.target, self.path, self.names, self.opset = model, target, path, names, opset

    def run(
        self,
        methods: Sequence[str],
        example: tuple[torch.Tensor, ...],
        spec: InputSpec,
        out_axes: Axes,
        cases: list[Case],
        notes: list[str],
        suffix: str = "",
    ) -> tuple[list[Attempt], tuple[str, int] | None]:
        """Every attempt, and ``(method, opset)`` of the graph kept at ``path`` (``None``: none passed)."""
        attempts: list[Attempt] = []
        axes = {**spec.axes, **out_axes}
        for method in methods:
            started = time.perf_counter()
            trial = self.path.with_name(f".{self.path.name}.{method}.tmp")
            used = self.opset
            try:
                try:
                    seen = export_graph(method, self.model, self.target, example, trial, spec, self.names, axes, used)
                except ExportError as err:
                    # torch.onnx names the opset an operator needs (asteroid's DPRNN: aten::col2im, opset 18).
                    needed = _NEEDS_OPSET.search(str(err))
                    if needed is None or not self.opset < int(needed.group(1)) <= MAX_OPSET:
                        raise
                    used = int(needed.group(1))
                    seen = export_graph(method, self.model, self.target, example, trial, spec, self.names, axes, used)
                    seen.append(f"opset {used} used: {str(err)[:120]}")
                notes.extend(f"{method}{suffix}: {n}" for n in seen)
                worst, reason = _parity(trial, spec, self.names, out_axes, cases)
            except ExportError as err:
                attempts.append(Attempt(method + suffix, "error", str(err), time.perf_counter() - started))
                trial.unlink(missing_ok=True)
                continue
            if reason:
                attempts.append(Attempt(method + suffix, "failed", reason, time.perf_counter() - started, worst))
                trial.unlink(missing_ok=True)
                continue
            attempts.append(Attempt(method + suffix, "passed", "", time.perf_counter() - started, worst))
            trial.replace(self.path)
            return attempts, (method, used)
        return attempts, None


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
