"""verify / assert_parity: does an exported module compute what the PyTorch one does, on every backend?

Measuring is separate from judging: ``verify`` runs every backend on a grid of resized inputs and records numbers
(max abs/rel difference per output, label agreement, padded vs unpadded rows, and whether the PyTorch model itself
depends on its padding); ``judge`` applies ``Criteria``; ``assert_parity`` fails a test with a readable table.
Per-token outputs (those with a sequence axis) are compared at valid positions only (t < length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.exporter.backends import Backend, TorchModuleBackend, default_backends
from lstm_onnx.exporter.module_export import ModuleExport
from lstm_onnx.exporter.module_inputs import BATCH, SEQUENCE, resize
from lstm_onnx.exporter.tolerances import FP32, Criteria
from lstm_onnx.runtime.errors import ParityError

__all__ = ["DEFAULT_GRID", "BackendRecord", "ModuleReport", "assert_parity", "format_table", "judge", "verify"]

# (B, T) pairs: one token, one text, unsorted mixes, long texts; none equal to export's example on purpose.
DEFAULT_GRID = ((1, 1), (1, 57), (2, 9), (5, 33), (16, 64), (64, 17), (3, 300))


@dataclass
class BackendRecord:
    """What one backend measured against PyTorch over the grid.

    Attributes:
        name: Backend name.
        status: ``passed``/``failed`` (after ``judge``), ``measured`` (before), or ``unavailable``.
        reason: Why unavailable, or what failed.
        max_abs_diff: Per output name, over every case (valid positions only).
        max_rel_diff: Per output name.
        label_agreement: Share of rows whose argmax matches, over (B, C) outputs with C > 1 (``None``: none).
        max_diff_unpadded_rows: Largest difference on rows whose length is T (no padding).
        max_diff_padded_rows: Largest difference on rows shorter than T; ``None`` without a lengths input.
        cases: Shapes run.
    """

    name: str
    status: str = "measured"
    reason: str = ""
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    max_rel_diff: dict[str, float] = field(default_factory=dict)
    label_agreement: float | None = None
    max_diff_unpadded_rows: float = 0.0
    max_diff_padded_rows: float | None = None
    cases: list[tuple[int, int]] = field(default_factory=list)

    @property
    def batch_invariant(self) -> bool | None:
        """False when padded rows are off while unpadded rows match (the backend ignores ``sequence_lens``)."""
        if self.max_diff_padded_rows is None or self.status == "unavailable":
            return None
        return self.max_diff_padded_rows <= max(10 * self.max_diff_unpadded_rows, FP32.atol or 0.0)

    def worst(self) -> float:
        """The largest difference over every output."""
        return max(self.max_abs_diff.values(), default=0.0)


@dataclass
class ModuleReport:
    """Everything ``verify`` measured.

    Attributes:
        backends: One record per backend, in run order.
        model_batch_dependent: The PyTorch model's outputs for a text change when it sits in a padded batch.
        batch_dependence_diff: Largest such change.
        criteria: What ``judge`` applied (``None`` before judging).
    """

    backends: list[BackendRecord]
    model_batch_dependent: bool | None
    batch_dependence_diff: float | None
    criteria: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Every available backend passed."""
        return all(r.status in ("passed", "unavailable") for r in self.backends)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the parity report file)."""
        rows = [
            {**asdict(r), "batch_invariant": r.batch_invariant, "servable": r.status == "passed"} for r in self.backends
        ]
        return {
            "passed": self.passed,
            "criteria": self.criteria,
            "model_batch_dependent": self.model_batch_dependent,
            "batch_dependence_diff": self.batch_dependence_diff,
            "backends": rows,
        }


def _valid_mask(shape: tuple[int, ...], axes: dict[int, str], lengths: NDArray[Any] | None) -> NDArray[np.bool_]:
    """True at positions that count: t < length[b] on outputs with batch and sequence axes, else everywhere."""
    mask = np.ones(shape, dtype=bool)
    inverse = {label: axis for axis, label in axes.items()}
    if lengths is None or BATCH not in inverse or SEQUENCE not in inverse:
        return mask
    b_axis, t_axis = inverse[BATCH], inverse[SEQUENCE]
    steps = np.arange(shape[t_axis])
    valid = steps[None, :] < lengths[:, None]  # (B, T)
    view = [1] * len(shape)
    view[b_axis], view[t_axis] = shape[b_axis], shape[t_axis]
    if b_axis > t_axis:
        valid = valid.T
    return mask & valid.reshape(view)


def _row_diffs(diff: NDArray[np.float64], axes: dict[int, str]) -> NDArray[np.float64] | None:
    """Max over every axis but the batch axis: (B) per-row differences, or ``None`` without a batch axis."""
    b_axis = next((a for a, lbl in axes.items() if lbl == BATCH), None)
    if b_axis is None:
        return None
    rows: NDArray[np.float64] = np.moveaxis(diff, b_axis, 0).reshape(diff.shape[b_axis], -1).max(axis=1, initial=0.0)
    return rows


def _measure(
    record: BackendRecord, got: list[NDArray[Any]], want: list[NDArray[Any]], info: ModuleExport, lengths: Any
) -> tuple[int, int]:
    agree = total = 0
    steps = None
    for name, g, w in zip(info.output_names, got, want, strict=True):
        axes = info.output_axes.get(name, {})
        if g.shape != w.shape:
            record.reason = f"output {name!r} has shape {g.shape}, torch {w.shape}"
            record.max_abs_diff[name] = float("inf")
            continue
        valid = _valid_mask(w.shape, axes, lengths)
        diff = np.where(valid, np.abs(g.astype(np.float64) - w.astype(np.float64)), 0.0)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        rel = diff / np.maximum(np.abs(w.astype(np.float64)), 1e-12)
        record.max_abs_diff[name] = max(record.max_abs_diff.get(name, 0.0), float(diff.max(initial=0.0)))
        record.max_rel_diff[name] = max(record.max_rel_diff.get(name, 0.0), float(rel.max(initial=0.0)))
        rows = _row_diffs(diff, axes)
        if rows is not None and lengths is not None:
            t_axis = next((a for a, lbl in axes.items() if lbl == SEQUENCE), None)
            steps = int(lengths.max()) if t_axis is None else w.shape[t_axis]
            padded = lengths < steps
            record.max_diff_padded_rows = max(record.max_diff_padded_rows or 0.0, float(rows[padded].max(initial=0.0)))
            record.max_diff_unpadded_rows = max(record.max_diff_unpadded_rows, float(rows[~padded].max(initial=0.0)))
        else:
            record.max_diff_unpadded_rows = max(record.max_diff_unpadded_rows, float(diff.max(initial=0.0)))
        if w.ndim == 2 and w.shape[1] > 1 and axes.get(0) == BATCH and 1 not in axes:
            agree += int((g.argmax(axis=1) == w.argmax(axis=1)).sum())
            total += w.shape[0]
    return agree, total


def _alone_vs_batch(
    torch_backend: TorchModuleBackend, info: ModuleExport, feed: dict[str, NDArray[Any]], want: list[NDArray[Any]]
) -> float | None:
    """Largest change of a text's outputs between running alone (unpadded) and inside its padded batch."""
    spec = info.spec
    if spec.lengths_input is None:
        return None
    lengths = feed[spec.lengths_input]
    worst = 0.0
    for row in range(min(len(lengths), 4)):
        length = int(lengths[row])
        alone = {}
        for name, array in feed.items():
            part = array
            for axis, label in spec.axes.get(name, {}).items():
                index = np.arange(row, row + 1) if label == BATCH else np.arange(length)
                part = np.take(part, index, axis=axis)
            alone[name] = np.ascontiguousarray(part)
        for name, single, batch in zip(info.output_names, torch_backend.run(alone), want, strict=True):
            axes = info.output_axes.get(name, {})
            picked = batch
            for axis, label in axes.items():
                index = np.arange(row, row + 1) if label == BATCH else np.arange(min(length, single.shape[axis]))
                picked = np.take(picked, index, axis=axis)
                if label == SEQUENCE:
                    single = np.take(single, index, axis=axis)
            if picked.shape == single.shape:
                worst = max(worst, float(np.abs(picked.astype(np.float64) - single).max(initial=0.0)))
    return worst


def verify(
    model: Any,
    info: ModuleExport,
    example: Sequence[Any],
    *,
    backends: Sequence[Backend] | None = None,
    grid: Sequence[tuple[int, int]] = DEFAULT_GRID,
    seed: int = 0,
) -> ModuleReport:
    """Measure every backend against the PyTorch module over ``grid`` (no judging; see ``judge``).

    Args:
        model: The PyTorch module exported by ``export_module`` (the reference).
        info: What ``export_module`` returned.
        example: The example inputs (tensors or arrays), resized to each (B, T) of ``grid``.
        backends: Engines to compare; default ``backends.default_backends(info.path)``.
        grid: (B, T) pairs.
        seed: Draws lengths.

    Returns:
        The measurements.
    """
    reference = TorchModuleBackend(model, info.spec.names)
    arrays = [np.asarray(e.numpy() if hasattr(e, "numpy") else e) for e in example]
    rng = np.random.default_rng(seed)
    cases = []
    for batch, steps in grid:
        feed = dict(zip(info.spec.names, resize(info.spec, arrays, batch, steps, rng), strict=True))
        cases.append(((batch, steps), feed, reference.run(feed)))
    dependence = [d for _, feed, want in cases if (d := _alone_vs_batch(reference, info, feed, want)) is not None]
    records = []
    for backend in backends if backends is not None else default_backends(info.path):
        record = BackendRecord(backend.name)
        ok, why = backend.available()
        if not ok:
            record.status, record.reason = "unavailable", why
            records.append(record)
            continue
        agree = total = 0
        for shape, feed, want in cases:
            lengths = feed.get(info.spec.lengths_input) if info.spec.lengths_input else None
            a, t = _measure(record, backend.run(feed), want, info, lengths)
            agree, total = agree + a, total + t
            record.cases.append(shape)
        record.label_agreement = agree / total if total else None
        records.append(record)
    worst_dependence = max(dependence) if dependence else None
    return ModuleReport(
        records,
        None if worst_dependence is None else worst_dependence > (FP32.atol or 0.0),
        worst_dependence,
    )


def judge(report: ModuleReport, criteria: Criteria = FP32) -> ModuleReport:
    """Set each measured backend's status: passed when every output's max abs diff <= ``criteria.atol`` and labels
    agree as required. Returns the same report."""
    report.criteria = asdict(criteria)
    for record in report.backends:
        if record.status == "unavailable":
            continue
        failures = []
        if criteria.atol is not None and record.worst() > criteria.atol:
            failures.append(f"max abs diff {record.worst():.3g} > atol {criteria.atol:g}")
        if record.label_agreement is not None and record.label_agreement < criteria.min_label_agreement:
            failures.append(f"label agreement {record.label_agreement:.4f} < {criteria.min_label_agreement}")
        if record.batch_invariant is False:
            failures.append(
                f"not batch-invariant: padded rows off by {record.max_diff_padded_rows:.3g}, unpadded rows by "
                f"{record.max_diff_unpadded_rows:.3g}"
            )
        record.status = "failed" if failures else "passed"
        record.reason = "; ".join(failures) if failures else record.reason
    return report


def format_table(report: ModuleReport) -> str:
    """A plain-text table: one row per backend, verdicts in words."""
    header = ("backend", "status", "max |diff|", "max rel", "labels", "padded rows", "unpadded rows", "batch-invariant")
    rows = [header]
    for r in report.backends:
        if r.status == "unavailable":
            rows.append((r.name, "unavailable", "", "", "", "", "", r.reason))
            continue
        rows.append(
            (
                r.name,
                r.status,
                f"{r.worst():.2e}",
                f"{max(r.max_rel_diff.values(), default=0.0):.2e}",
                "" if r.label_agreement is None else f"{r.label_agreement:.4f}",
                "" if r.max_diff_padded_rows is None else f"{r.max_diff_padded_rows:.2e}",
                f"{r.max_diff_unpadded_rows:.2e}",
                {True: "yes", False: "NO: ignores padding", None: "n/a"}[r.batch_invariant],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if report.model_batch_dependent is not None:
        verdict = "DEPENDS on its padding" if report.model_batch_dependent else "does not depend on its padding"
        lines.append(f"PyTorch model {verdict} (text alone vs in a padded batch: {report.batch_dependence_diff:.2e}).")
    failed = [r for r in report.backends if r.status == "failed"]
    for r in failed:
        lines.append(f"{r.name} failed: {r.reason}. Never serve with it.")
    return "\n".join(lines)


def assert_parity(
    model: Any,
    info: ModuleExport,
    example: Sequence[Any],
    *,
    criteria: Criteria = FP32,
    backends: Sequence[Backend] | None = None,
    grid: Sequence[tuple[int, int]] = DEFAULT_GRID,
) -> ModuleReport:
    """``verify`` then ``judge``; raise with the table when any available backend fails (for users' tests).

    Raises:
        ParityError: Some backend failed; the message is the table.
    """
    report = judge(verify(model, info, example, backends=backends, grid=grid), criteria)
    if not report.passed:
        raise ParityError("Parity failed:\n" + format_table(report))
    return report
