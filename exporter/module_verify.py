"""verify / assert_parity: does an exported module compute what the PyTorch one does, on every backend?

Measuring is separate from judging: ``verify`` runs every backend on the grid (``module_parity.measure_cases``:
max abs/rel difference and tolerance ratio per output, label agreement, padded vs unpadded rows) and measures
whether the PyTorch model itself depends on its padding; ``judge`` applies ``Criteria`` with the one judge
``|a - b| <= atol + rtol·|b|``; ``assert_parity`` fails a test with a readable table. An engine that does not
implement ``sequence_lens`` (the ONNX reference evaluator, OpenVINO) and is off only on padded rows is reported
``ignores-padding`` with its numbers: not servable for padded batches, not a failure of the export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.exporter.backends import Backend, TorchModuleBackend, default_backends
from lstm_onnx.exporter.module_inputs import GridPoint, flat_inputs
from lstm_onnx.exporter.module_parity import BackendRecord, Case, make_cases, measure_cases
from lstm_onnx.exporter.tolerances import FP32, Criteria
from lstm_onnx.runtime.errors import ParityError

if TYPE_CHECKING:
    from lstm_onnx.exporter.module_export import ModuleExport

__all__ = ["BackendRecord", "ModuleReport", "assert_parity", "format_table", "judge", "verify"]

# The reference evaluator is the ONNX spec in numpy, one op at a time: it gets the grid's smallest cases only.
SLOW_BACKENDS = {"onnx-reference": 3}
_SLOW_MAX_ELEMENTS = 60_000


@dataclass
class ModuleReport:
    """Everything ``verify`` measured.

    Attributes:
        backends: One record per backend, in run order.
        model_batch_dependent: The PyTorch model's outputs for an item change when it sits in a padded batch.
        batch_dependence_diff: Largest such change.
        criteria: What ``judge`` applied (``None`` before judging).
        method: The way the graph was made (``lowering``, ``torchscript``, ``dynamo``).
        grid: (B, T) points run.
        notes: The export's notes (inferred axes, TracerWarnings, unusual ops, dropped grid points).
    """

    backends: list[BackendRecord]
    model_batch_dependent: bool | None
    batch_dependence_diff: float | None
    criteria: dict[str, Any] | None = None
    method: str = ""
    grid: tuple[GridPoint, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Some backend passed and none failed (``ignores-padding``, ``unsupported`` and ``unavailable`` are reported,
        not failures)."""
        statuses = {r.status for r in self.backends}
        return "passed" in statuses and statuses <= {"passed", "unavailable", "ignores-padding", "unsupported"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the parity report file)."""
        rows = [
            {**asdict(r), "batch_invariant": r.batch_invariant, "servable": r.status == "passed"} for r in self.backends
        ]
        return {
            "passed": self.passed,
            "method": self.method,
            "criteria": self.criteria,
            "grid": [list(p) for p in self.grid],
            "model_batch_dependent": self.model_batch_dependent,
            "batch_dependence_diff": self.batch_dependence_diff,
            "backends": rows,
            "notes": list(self.notes),
        }


def _alone_vs_batch(
    torch_backend: TorchModuleBackend, info: ModuleExport, feed: dict[str, NDArray[Any]], want: list[NDArray[Any]]
) -> float | None:
    """Largest change of an item's outputs between running alone (unpadded) and inside its padded batch."""
    spec = info.spec
    if spec.lengths_input is None or spec.lengths_relative or spec.make_inputs is not None:
        return None
    counted = {label: feed[name] for name, label in spec.lengths_axes.items()}  # axis name -> lengths (B)
    worst = 0.0
    for row in range(min(len(feed[spec.lengths_input]), 4)):
        keep = {label: int(lengths[row]) for label, lengths in counted.items()}
        alone = {}
        for name, array in feed.items():
            part = array
            for axis, label in spec.axes.get(name, {}).items():
                if label == spec.batch:
                    part = np.take(part, [row], axis=axis)
                elif label in keep:
                    part = np.take(part, np.arange(keep[label]), axis=axis)
            alone[name] = np.ascontiguousarray(part)
        try:
            singles = torch_backend.run(alone)
        # The model may refuse a single unpadded item (e.g. a minimum batch): then the dependence is not measured.
        except Exception:  # noqa: BLE001
            return None
        for name, single, batch in zip(info.output_names, singles, want, strict=True):
            picked = batch
            for axis, label in info.output_axes.get(name, {}).items():
                if label == spec.batch:
                    picked = np.take(picked, [row], axis=axis)
                elif label in keep and axis < single.ndim:
                    index = np.arange(min(keep[label], single.shape[axis], picked.shape[axis]))
                    picked, single = np.take(picked, index, axis=axis), np.take(single, index, axis=axis)
            if picked.shape == single.shape:
                worst = max(worst, float(np.abs(picked.astype(np.float64) - single).max(initial=0.0)))
    return worst


def _cases_for(backend: Backend, cases: list[Case]) -> list[Case]:
    keep = SLOW_BACKENDS.get(backend.name)
    if keep is None:
        return cases
    size = sorted(cases, key=lambda c: sum(a.size for a in c.feed.values()))
    small = [c for c in size if sum(a.size for a in c.feed.values()) <= _SLOW_MAX_ELEMENTS][:keep]
    return small or size[:1]


def verify(
    model: Any,
    info: ModuleExport,
    example: Sequence[Any],
    *,
    backends: Sequence[Backend] | None = None,
    grid: Sequence[GridPoint] | None = None,
    criteria: Criteria = FP32,
    seed: int = 0,
) -> ModuleReport:
    """Measure every backend against the PyTorch module over ``grid`` (no judging; see ``judge``).

    Args:
        model: The PyTorch module exported by ``export_module`` (the reference).
        info: What ``export_module`` returned.
        example: The example inputs (tensors or arrays).
        backends: Engines to compare; default ``backends.default_backends(info.path)``.
        grid: (B, T) points; default the grid the export was checked on. A point the model fails at raises.
        criteria: The tolerance the ratios are measured against (judge with the same).
        seed: Draws lengths.

    Returns:
        The measurements.

    Raises:
        ExportError: The PyTorch model fails at a grid point given here (one line naming it).
    """
    model, example = flat_inputs(model, example)
    if info.fixed_batch:
        example = info.example  # one item: the graph takes no other batch size
    arrays = [np.ascontiguousarray(e.detach().cpu().numpy() if hasattr(e, "detach") else e) for e in example]
    points = tuple(grid) if grid is not None else info.grid
    cases, _ = make_cases(model, info.spec, arrays, points, strict=grid is not None, seed=seed)
    reference = TorchModuleBackend(model, info.spec.names)
    dependence = [d for c in cases if (d := _alone_vs_batch(reference, info, c.feed, c.want)) is not None]
    records = [
        measure_cases(backend, _cases_for(backend, cases), info.spec, info.output_names, info.output_axes, criteria)
        for backend in (backends if backends is not None else default_backends(info.path))
    ]
    worst_dependence = max(dependence) if dependence else None
    return ModuleReport(
        records,
        None if worst_dependence is None else worst_dependence > (FP32.atol or 0.0),
        worst_dependence,
        method=info.method,
        grid=tuple(c.shape for c in cases),
        notes=info.notes,
    )


def judge(report: ModuleReport, criteria: Criteria = FP32) -> ModuleReport:
    """Set each measured backend's status with the one judge: ``passed`` when every output is within ``atol +
    rtol·|torch|`` at every valid position and labels agree as required; ``ignores-padding`` for an engine without
    ``sequence_lens`` that is off on padded rows only; else ``failed``. Returns the same report."""
    report.criteria = asdict(criteria)
    for record in report.backends:
        if record.status in ("unavailable",):
            continue
        if record.status == "error" and not record.servable:
            record.status = "unsupported"  # an independent check lacking an operator says nothing about the graph
            continue
        failures = record.failures(criteria)
        unpadded_ok = record.max_diff_unpadded_rows <= 10 * (criteria.atol or FP32.atol or 0.0)
        if failures and record.status != "error" and not record.honours_padding and record.batch_invariant is False:
            if unpadded_ok:
                record.status = "ignores-padding"
                record.reason = (
                    f"the engine ignores sequence_lens: padded rows off by {record.max_diff_padded_rows:.3g}, "
                    f"unpadded rows by {record.max_diff_unpadded_rows:.3g}; serve padded batches with ONNX Runtime"
                )
                continue
        record.status = "failed" if failures else "passed"
        record.reason = "; ".join(failures) if failures else record.reason
    return report


def format_table(report: ModuleReport) -> str:
    """A plain-text table: one row per backend, verdicts in words."""
    header = ("backend", "status", "max |diff|", "tol. ratio", "max rel", "labels", "padded rows", "unpadded rows")
    rows = [header]
    for r in report.backends:
        if r.status in ("unavailable", "error", "unsupported"):
            rows.append((r.name, r.status, "", "", "", "", "", r.reason[:120]))
            continue
        rows.append(
            (
                r.name,
                r.status,
                f"{r.worst():.2e}",
                f"{r.worst_ratio():.2f}",
                f"{max(r.max_rel_diff.values(), default=0.0):.2e}",
                "" if r.label_agreement is None else f"{r.label_agreement:.4f}",
                "" if r.max_diff_padded_rows is None else f"{r.max_diff_padded_rows:.2e}",
                f"{r.max_diff_unpadded_rows:.2e}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if report.method:
        grid = ", ".join(f"{b}x{t}" for b, t in report.grid)
        lines.append(f"Graph made by: {report.method}. Grid (B x T): {grid}.")
    if report.model_batch_dependent is not None:
        verdict = "DEPENDS on its padding" if report.model_batch_dependent else "does not depend on its padding"
        lines.append(f"PyTorch model {verdict} (item alone vs in a padded batch: {report.batch_dependence_diff:.2e}).")
    for r in report.backends:
        if r.status == "failed":
            lines.append(f"{r.name} failed: {r.reason}. Never serve with it.")
        elif r.status == "ignores-padding":
            lines.append(f"{r.name}: {r.reason}.")
    return "\n".join(lines)


def assert_parity(
    model: Any,
    info: ModuleExport,
    example: Sequence[Any],
    *,
    criteria: Criteria = FP32,
    backends: Sequence[Backend] | None = None,
    grid: Sequence[GridPoint] | None = None,
) -> ModuleReport:
    """``verify`` then ``judge``; raise with the table when any available backend fails (for users' tests).

    Raises:
        ParityError: Some backend failed; the message is the table.
    """
    report = judge(verify(model, info, example, backends=backends, grid=grid, criteria=criteria), criteria)
    if not report.passed:
        raise ParityError("Parity failed:\n" + format_table(report))
    return report
