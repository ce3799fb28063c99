"""Measuring a backend against the eager PyTorch model over a grid of cases: numbers only, never a verdict.

A case is one (B, T) point: inputs made by the spec (the example resized, or the user's ``make_inputs``) and the
eager model's outputs. ``measure_cases`` runs a backend on every case and records, per output, the largest |Δ| and
the worst ratio of |Δ| to the allowance ``atol + rtol·|torch|`` (the one judge, ``tolerances.within``), at valid
positions only (t < length on per-step outputs), split into padded and unpadded rows, plus label agreement.
``module_verify.judge`` turns records into verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from lstm_onnx.exporter.module_inputs import Axes, GridPoint, InputSpec, flatten_outputs
from lstm_onnx.exporter.tolerances import FP32, Criteria, tolerance_ratio
from lstm_onnx.runtime.errors import ExportError

__all__ = ["BackendRecord", "Case", "make_cases", "measure_cases"]


@dataclass(frozen=True)
class Case:
    """One grid point: inputs, the eager outputs, and the step lengths that mask per-step outputs.

    Attributes:
        shape: (B, T) asked for.
        feed: Input name -> array.
        want: The eager model's outputs, in output order.
        lengths: int (B) valid steps per row along the primary axis, or ``None`` (no absolute lengths input).
    """

    shape: GridPoint
    feed: dict[str, NDArray[Any]]
    want: list[NDArray[Any]]
    lengths: NDArray[Any] | None


@dataclass
class BackendRecord:
    """What one backend measured against PyTorch over the grid.

    Attributes:
        name: Backend name.
        status: ``measured`` before judging; ``passed``/``failed``/``ignores-padding`` after; ``unavailable`` or
            ``error`` (it could not run a case: ``reason`` says which and why).
        reason: Why unavailable, in error, or failed.
        max_abs_diff: Per output name, over every case (valid positions only).
        max_rel_diff: Per output name, over positions where |torch| >= 1e-3 (a relative difference near zero means
            nothing).
        tolerance_ratio: Per output name, the largest |Δ| / (atol + rtol·|torch|): 1.0 is the tolerance's edge.
        label_agreement: Share of rows whose argmax matches, over (B, C) outputs with C > 1 (``None``: none).
        max_diff_unpadded_rows: Largest difference on rows whose length is T (no padding).
        max_diff_padded_rows: Largest difference on rows shorter than T; ``None`` without a lengths input.
        honours_padding: The engine implements ``sequence_lens`` (False: the reference evaluator, OpenVINO).
        servable: An engine to serve with (ONNX Runtime); a failure to run on another is ``unsupported``.
        cases: Shapes run.
        criteria: The atol/rtol the ratios were measured with.
    """

    name: str
    status: str = "measured"
    reason: str = ""
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    max_rel_diff: dict[str, float] = field(default_factory=dict)
    tolerance_ratio: dict[str, float] = field(default_factory=dict)
    label_agreement: float | None = None
    max_diff_unpadded_rows: float = 0.0
    max_diff_padded_rows: float | None = None
    honours_padding: bool = True
    servable: bool = True
    cases: list[GridPoint] = field(default_factory=list)
    criteria: dict[str, float | None] = field(default_factory=dict)

    def worst(self) -> float:
        """The largest difference over every output."""
        return max(self.max_abs_diff.values(), default=0.0)

    def worst_ratio(self) -> float:
        """The largest tolerance ratio over every output (> 1: outside the tolerance)."""
        return max(self.tolerance_ratio.values(), default=0.0)

    @property
    def batch_invariant(self) -> bool | None:
        """False when padded rows are off while unpadded rows match (the engine ignores ``sequence_lens``)."""
        if self.max_diff_padded_rows is None or self.status in ("unavailable", "error"):
            return None
        floor = self.criteria.get("atol") or FP32.atol or 0.0
        return self.max_diff_padded_rows <= max(10 * self.max_diff_unpadded_rows, floor)

    def failures(self, criteria: Criteria) -> list[str]:
        """Every way the record misses ``criteria`` (empty: it meets them)."""
        failures = []
        if self.status == "error":
            return [self.reason]
        if criteria.atol is not None and self.worst_ratio() > 1.0:
            name = max(self.tolerance_ratio, key=lambda k: self.tolerance_ratio[k])
            failures.append(
                f"{name}: max |diff| {self.max_abs_diff[name]:.3g} outside atol {criteria.atol:g} + rtol "
                f"{criteria.rtol:g}·|torch| ({self.tolerance_ratio[name]:.3g}x the allowance)"
            )
        if self.label_agreement is not None and self.label_agreement < criteria.min_label_agreement:
            failures.append(f"label agreement {self.label_agreement:.4f} < {criteria.min_label_agreement}")
        if self.batch_invariant is False:
            failures.append(
                f"padded rows off by {self.max_diff_padded_rows:.3g}, unpadded rows by "
                f"{self.max_diff_unpadded_rows:.3g}"
            )
        return failures


def make_cases(
    model: nn.Module,
    spec: InputSpec,
    example: list[NDArray[Any]],
    grid: Sequence[GridPoint],
    *,
    strict: bool,
    seed: int = 0,
) -> tuple[list[Case], list[str]]:
    """Inputs and eager outputs for every grid point.

    Args:
        model: The eager model (the reference).
        spec: How inputs are made.
        example: The example inputs as arrays.
        grid: (B, T) points.
        strict: A point the eager model fails at raises (the user chose the grid); otherwise it is dropped with a
            note (the default grid guesses around the example).
        seed: Draws lengths.

    Returns:
        The cases, and notes on dropped points.

    Raises:
        ExportError: ``strict`` and the model fails at a point (one line naming it), or no point is left.
    """
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    notes: list[str] = []
    for batch, steps in grid:
        # Values drawn from the example's (a data-dependent branch meets other data); the example's values repeated
        # in place when the model refuses such inputs (structured ones: masks, sorted positions).
        want: list[NDArray[Any]] | None = None
        failure: Exception = ExportError("no input")
        for mix in (True, False):
            inputs = spec.case(example, batch, steps, rng, mix)
            try:
                with torch.no_grad():
                    want = [t.cpu().numpy() for t in flatten_outputs(model(*(torch.from_numpy(a) for a in inputs)))]
                break
            # The user's model can fail in any way at a shape: one line names the point.
            except Exception as err:  # noqa: BLE001
                failure = err
        if want is None:
            first = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
            line = (
                f"the PyTorch model fails at grid point B={batch}, T={steps}: {type(failure).__name__}: {first[:200]}"
            )
            if strict:
                raise ExportError(line[0].upper() + line[1:] + ". Choose another grid.") from failure
            notes.append(f"dropped: {line}")
            continue
        feed = dict(zip(spec.names, inputs, strict=True))
        lengths = None
        if spec.lengths_input is not None and not spec.lengths_relative:
            lengths = np.asarray(feed[spec.lengths_input]).astype(np.int64)
        cases.append(Case((batch, steps), feed, want, lengths))
    if not cases:
        raise ExportError(f"The PyTorch model runs at no grid point ({'; '.join(notes)}).")
    return cases, notes


def _valid_mask(
    shape: tuple[int, ...], axes: dict[int, str], spec: InputSpec, lengths: NDArray[Any] | None
) -> NDArray[np.bool_]:
    """True at positions that count: t < length[b] on outputs with the batch and the lengths' axis, else everywhere."""
    mask = np.ones(shape, dtype=bool)
    inverse = {label: axis for axis, label in axes.items()}
    if lengths is None or spec.batch not in inverse or spec.primary not in inverse:
        return mask
    b_axis, t_axis = inverse[str(spec.batch)], inverse[str(spec.primary)]
    steps = np.arange(shape[t_axis])
    valid = steps[None, :] < lengths[:, None]  # (B, T)
    view = [1] * len(shape)
    view[b_axis], view[t_axis] = shape[b_axis], shape[t_axis]
    if b_axis > t_axis:
        valid = valid.T
    return mask & valid.reshape(view)


def _row_diffs(diff: NDArray[np.float64], b_axis: int | None) -> NDArray[np.float64] | None:
    """Max over every axis but the batch axis: (B) per-row differences, or ``None`` without a batch axis."""
    if b_axis is None:
        return None
    rows: NDArray[np.float64] = np.moveaxis(diff, b_axis, 0).reshape(diff.shape[b_axis], -1).max(axis=1, initial=0.0)
    return rows


def _abs_diff(got: NDArray[np.float64], want: NDArray[np.float64]) -> NDArray[np.float64]:
    """|got - want|, 0 where both are the same non-finite value, inf where only one is non-finite."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    raw = np.abs(got - want)
    out: NDArray[np.float64] = np.where(same, 0.0, np.where(np.isfinite(raw), raw, np.inf))
    return out


def _measure_case(
    record: BackendRecord,
    got: list[NDArray[Any]],
    case: Case,
    spec: InputSpec,
    names: Sequence[str],
    out_axes: Axes,
    criteria: Criteria,
) -> tuple[int, int]:
    agree = total = 0
    atol = criteria.atol if criteria.atol is not None else FP32.atol or 0.0
    rtol = criteria.rtol if criteria.rtol is not None else FP32.rtol or 0.0
    for name, g, w in zip(names, got, case.want, strict=True):
        axes = out_axes.get(name, {})
        if g.shape != w.shape:
            record.reason = record.reason or f"output {name!r} has shape {g.shape} at {case.shape}, torch {w.shape}"
            record.max_abs_diff[name] = record.tolerance_ratio[name] = float("inf")
            continue
        valid = _valid_mask(w.shape, axes, spec, case.lengths)
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        raw = _abs_diff(g64, w64)
        diff = np.where(valid, raw, 0.0)
        ratio = np.where(valid, tolerance_ratio(g64, w64, atol, rtol), 0.0)
        large = valid & (np.abs(w64) >= 1e-3)
        rel = np.where(large, diff / np.maximum(np.abs(w64), 1e-3), 0.0)
        record.max_abs_diff[name] = max(record.max_abs_diff.get(name, 0.0), float(diff.max(initial=0.0)))
        record.max_rel_diff[name] = max(record.max_rel_diff.get(name, 0.0), float(rel.max(initial=0.0)))
        record.tolerance_ratio[name] = max(record.tolerance_ratio.get(name, 0.0), float(ratio.max(initial=0.0)))
        b_axis = next((a for a, lbl in axes.items() if lbl == spec.batch), None)
        rows = _row_diffs(diff, b_axis)
        if rows is not None and case.lengths is not None and rows.shape == case.lengths.shape:
            t_axis = next((a for a, lbl in axes.items() if lbl == spec.primary), None)
            steps = int(case.lengths.max()) if t_axis is None else w.shape[t_axis]
            padded = case.lengths < steps
            record.max_diff_padded_rows = max(record.max_diff_padded_rows or 0.0, float(rows[padded].max(initial=0.0)))
            record.max_diff_unpadded_rows = max(record.max_diff_unpadded_rows, float(rows[~padded].max(initial=0.0)))
        else:
            record.max_diff_unpadded_rows = max(record.max_diff_unpadded_rows, float(diff.max(initial=0.0)))
        if w.ndim == 2 and w.shape[1] > 1 and b_axis == 0 and 1 not in axes:
            agree += int((g.argmax(axis=1) == w.argmax(axis=1)).sum())
            total += w.shape[0]
    return agree, total


def measure_cases(
    backend: Any,
    cases: Sequence[Case],
    spec: InputSpec,
    names: Sequence[str],
    out_axes: Axes,
    criteria: Criteria = FP32,
) -> BackendRecord:
    """Run ``backend`` on every case and record the differences (never raises for a backend failure: the record's
    status is then ``error`` with the case and the first line of the error)."""
    record = BackendRecord(
        backend.name,
        honours_padding=getattr(backend, "honours_padding", True),
        servable=getattr(backend, "servable", True),
    )
    record.criteria = {"atol": criteria.atol, "rtol": criteria.rtol}
    ok, why = backend.available()
    if not ok:
        record.status, record.reason = "unavailable", why
        return record
    agree = total = 0
    for case in cases:
        try:
            got = backend.run(case.feed)
        # An engine can fail in any way at a shape (a size frozen into the graph, an op it lacks): one line.
        except Exception as err:  # noqa: BLE001
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            shapes = {k: list(v.shape) for k, v in case.feed.items()}
            record.status = "error"
            record.reason = f"fails at B={case.shape[0]}, T={case.shape[1]} {shapes}: {first[:240]}"
            return record
        if len(got) != len(case.want):
            record.status = "error"
            record.reason = f"returns {len(got)} outputs, torch {len(case.want)}"
            return record
        a, t = _measure_case(record, got, case, spec, names, out_axes, criteria)
        agree, total = agree + a, total + t
        record.cases.append(case.shape)
    record.label_agreement = agree / total if total else None
    return record
