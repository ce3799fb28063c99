"""Run the real-library model zoo through three exporters and print one Markdown table.

For every ``zoo/models/<name>.py`` (each defines ``make()`` in ``lstm-onnx export-module``'s factory convention):

(a) ``torch.onnx.export(..., dynamo=False)`` (TorchScript) with the factory's dynamic axes,
(b) ``torch.onnx.export(..., dynamo=True)`` with ``dynamic_shapes`` holding the same axes (same names),
(c) ``lstm-onnx export-module zoo/models/<name>.py:make --out TMP`` through the CLI (exit code, last stderr line).

(a) and (b) are then run with ONNX Runtime CPU on shapes the export never saw (another batch size, other lengths;
a file's ``make_inputs(batch, length)`` makes them when its inputs are coupled) and compared with the eager PyTorch
model: pass when every output satisfies ``|onnx - torch| <= atol + rtol * |torch|``.

Each part runs in its own subprocess with a time limit, so one hang or crash leaves the rest of the table.

    .zoo-venv/bin/python zoo/run.py [--only NAME[,NAME]] [--json out.json] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parent
MODELS = ZOO / "models"
REPO = ZOO.parent
ATOL = 1e-4
RTOL = 1e-3
DEFAULT_TIMEOUT = 600
PARTS = ("torchscript", "dynamo")


# --------------------------------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------------------------------


def model_files(only: list[str] | None) -> list[Path]:
    files = sorted(p for p in MODELS.glob("*.py") if not p.name.startswith("_"))
    if only:
        wanted = set(only)
        unknown = wanted - {p.stem for p in files}
        if unknown:
            raise SystemExit(f"unknown model(s): {', '.join(sorted(unknown))}")
        files = [p for p in files if p.stem in wanted]
    return files


def library_of(path: Path) -> tuple[str, str]:
    """``LIBRARY = "dist-name"`` of a model file (read without importing it) and that distribution's version."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    dist = "torch"
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "LIBRARY" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            dist = str(node.value.value)
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return dist, version


def load(path: Path) -> Any:
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"zoo_model_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------------------------
# Inputs: names, axes, unseen shapes
# --------------------------------------------------------------------------------------------------------------------


def flat_inputs(model: Any, example: tuple[Any, ...]) -> tuple[list[str], list[Any], list[tuple[int, ...]]]:
    """Names (``forward``'s parameters; ``name_0``, ``name_1``... for a tuple argument), tensors, and their paths
    (argument index, and index inside a tuple argument). ``None`` arguments are skipped (they are no graph input)."""
    params = [
        p.name
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    names, tensors, paths = [], [], []
    for i, value in enumerate(example):
        base = params[i] if i < len(params) else f"input_{i}"
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            for j, item in enumerate(value):
                names.append(f"{base}_{j}")
                tensors.append(item)
                paths.append((i, j))
        else:
            names.append(base)
            tensors.append(value)
            paths.append((i,))
    return names, tensors, paths


def flatten_args(args: tuple[Any, ...]) -> list[Any]:
    """The tensors of ``args`` in ``flat_inputs``' order."""
    flat: list[Any] = []
    for value in args:
        if value is None:
            continue
        flat.extend(value if isinstance(value, (tuple, list)) else [value])
    return flat


def default_axes(names: list[str], tensors: list[Any]) -> dict[str, dict[int, str]]:
    """Every input's axis 0 is the batch; the time axis is axis 1 (the last one when axis 1 has size 1)."""
    axes: dict[str, dict[int, str]] = {}
    for name, t in zip(names, tensors, strict=True):
        if t.dim() == 0:
            continue
        ax = {0: "batch"}
        if t.dim() >= 2:
            ax[1 if t.shape[1] != 1 or t.dim() == 2 else t.dim() - 1] = "time"
        axes[name] = ax
    return axes


def is_batch_axis(label: str) -> bool:
    return "batch" in label.lower()


def unseen_pairs(batch: int, length: int) -> list[tuple[int, int]]:
    """Another batch size with a longer length, batch 1 with twice the length, the batch with a shorter length."""
    return [
        (batch + 1, length + max(1, length // 2)),
        (1 if batch != 1 else 3, 2 * length),
        (batch, max(2, (3 * length) // 4)),
    ]


def resized(
    names: list[str], tensors: list[Any], axes: dict[str, dict[int, str]], batch: int, factor: float, seed: int
) -> list[Any]:
    """Fresh inputs: batch axes get ``batch``, every other dynamic axis its size times ``factor``.

    Float tensors are drawn from N(0, 1); integer tensors within the example's [min, max]. A 1-D input whose only
    dynamic axis is the batch is a lengths input: integers in [1, T'] with one equal to T' (T' the new size of the
    axis whose example size was the longest length), or fractions in (0.3, 1] with one equal to 1 (speechbrain's
    relative lengths); sorted longest first when the example's were.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    new_size: dict[tuple[int, int], int] = {}
    for k, (name, t) in enumerate(zip(names, tensors, strict=True)):
        for axis, label in axes.get(name, {}).items():
            new_size[(k, axis)] = batch if is_batch_axis(label) else max(1, round(t.shape[axis] * factor))
    out = []
    for k, (name, t) in enumerate(zip(names, tensors, strict=True)):
        shape = [new_size.get((k, a), s) for a, s in enumerate(t.shape)]
        ax = axes.get(name, {})
        is_lengths = t.dim() == 1 and ax and all(is_batch_axis(v) for v in ax.values())
        if is_lengths and t.numel() > 0:
            descending = bool((t[:-1] >= t[1:]).all())
            if t.is_floating_point():
                values = 0.3 + 0.7 * torch.rand(shape, generator=gen)
                values[0] = 1.0
            else:
                longest = int(t.max())
                steps = longest
                for j, (n2, t2) in enumerate(zip(names, tensors, strict=True)):
                    for a2, size in enumerate(t2.shape):
                        if size == longest and (j, a2) in new_size and not is_batch_axis(axes[n2][a2]):
                            steps = new_size[(j, a2)]
                values = torch.randint(1, steps + 1, shape, generator=gen)
                values[0] = steps
            if descending:
                values = values.sort(descending=True).values
            out.append(values.to(t.dtype))
        elif t.is_floating_point():
            out.append(torch.randn(shape, generator=gen).to(t.dtype))
        elif t.dtype == torch.bool:
            out.append(torch.ones(shape, dtype=torch.bool))
        else:
            low, high = (int(t.min()), int(t.max())) if t.numel() else (0, 1)
            out.append(torch.randint(low, high + 1, shape, generator=gen).to(t.dtype))
    return out


def regroup(flat: list[Any], paths: list[tuple[int, ...]], example: tuple[Any, ...]) -> tuple[Any, ...]:
    """``flat`` put back into ``example``'s structure (``None`` arguments stay ``None``)."""
    args: list[Any] = [None if v is None else [] if isinstance(v, (tuple, list)) else v for v in example]
    for value, path in zip(flat, paths, strict=True):
        if len(path) == 1:
            args[path[0]] = value
        else:
            args[path[0]].append(value)
    return tuple(tuple(a) if isinstance(a, list) else a for a in args)


def unseen_inputs(
    module: Any,
    example: tuple[Any, ...],
    names: list[str],
    tensors: list[Any],
    paths: list[tuple[int, ...]],
    axes: dict[str, dict[int, str]],
) -> list[tuple[str, tuple[Any, ...]]]:
    """(label, args) of shapes the export did not see: from ``make_inputs`` when the file has one, else resized."""
    import torch

    cases = []
    if hasattr(module, "make_inputs"):
        batch, length = module.EXAMPLE
        for b, n in unseen_pairs(batch, length):
            torch.manual_seed(1000 + b * 7919 + n)
            cases.append((f"B={b} length={n}", tuple(module.make_inputs(b, n))))
    else:
        batch = next(
            (int(t.shape[a]) for n, t in zip(names, tensors, strict=True) for a, v in axes.get(n, {}).items()
             if is_batch_axis(v)),
            1,
        )  # fmt: skip
        for i, (b, factor) in enumerate(((batch + 1, 1.5), (1 if batch != 1 else 3, 2.0), (batch, 0.75))):
            flat = resized(names, tensors, axes, b, factor, seed=1000 + i)
            cases.append((f"B={b} x{factor:g}", regroup(flat, paths, example)))
    seen = {tuple(tuple(t.shape) for t in tensors)}
    kept = []
    for label, args in cases:
        key = tuple(tuple(t.shape) for t in flatten_args(args))
        if key not in seen:
            seen.add(key)
            kept.append((label, args))
    return kept


def flatten_outputs(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten_outputs(v)]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flatten_outputs(v)]
    if hasattr(value, "_fields"):  # namedtuple-like
        return flatten_outputs(tuple(value))
    return []


# --------------------------------------------------------------------------------------------------------------------
# Worker: one exporter on one model, in its own process
# --------------------------------------------------------------------------------------------------------------------


def _line(err: BaseException) -> str:
    """The first meaningful line of an exception: TorchScript prefixes its message with the whole IR graph."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Torch IR graph at exception"):
        lines = lines[-1:]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def first_line(err: BaseException) -> str:
    """One line for an exception: its own first line, and the root cause's when it was raised from another."""
    root = err
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is err:
        return _line(err)
    return f"{type(err).__name__} <- {_line(root)}"


def compare(ref: list[Any], got: list[Any]) -> tuple[float, bool, str]:
    """Largest |got - ref| over all outputs and whether |got - ref| <= atol + rtol |ref| everywhere."""
    import numpy as np

    if len(ref) != len(got):
        return math.inf, False, f"{len(got)} ONNX outputs vs {len(ref)} PyTorch outputs"
    worst, ok, note = 0.0, True, ""
    for i, (r, g) in enumerate(zip(ref, got, strict=True)):
        r = r.detach().cpu().numpy()
        g = np.asarray(g)
        if r.shape != g.shape:
            return math.inf, False, f"output {i}: shape {g.shape} vs PyTorch {r.shape}"
        if r.size == 0:
            continue
        r64, g64 = r.astype(np.float64), g.astype(np.float64)
        diff = np.abs(g64 - r64)
        nan_mismatch = np.isnan(r64) != np.isnan(g64)
        if nan_mismatch.any():
            return math.inf, False, f"output {i}: NaN where PyTorch has none (or the reverse)"
        diff = np.where(np.isnan(diff), 0.0, diff)
        worst = max(worst, float(diff.max()))
        if not (diff <= ATOL + RTOL * np.abs(np.where(np.isnan(r64), 0.0, r64))).all():
            ok = False
    return worst, ok, note


class Result(dict):  # type: ignore[type-arg]
    """The worker's record; setting ``stage`` writes a ``.stage`` file, so a crash still says where it happened."""

    def __init__(self, path: Path, **items: Any) -> None:
        super().__init__(**items)
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == "stage":
            self.path.with_suffix(".stage").write_text(str(value), encoding="utf-8")


def worker(part: str, path: Path, result_path: Path) -> None:
    result = Result(result_path, part=part, status="error")

    def save() -> None:
        result_path.write_text(json.dumps(dict(result), indent=2, default=str), encoding="utf-8")

    try:
        _worker(part, path, result)
    except BaseException as err:  # noqa: BLE001 - every failure becomes one line of the table
        result.setdefault("error", first_line(err))
        result["traceback"] = traceback.format_exc()[-4000:]
    save()


def _worker(part: str, path: Path, result: Result) -> None:
    import onnx
    import onnxruntime as ort
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    result["stage"] = "make"
    module = load(path)
    made = module.make()
    model, example, *rest = made
    if not isinstance(example, (tuple, list)):
        example = (example,)
    example = tuple(example)
    axes_given = rest[0] if rest else None
    model.eval()
    names, tensors, paths = flat_inputs(model, example)
    axes = {k: dict(v) for k, v in (axes_given or default_axes(names, tensors)).items()}
    result["inputs"] = {n: list(t.shape) for n, t in zip(names, tensors, strict=True)}
    result["axes"] = {k: {str(a): v for a, v in ax.items()} for k, ax in axes.items()}

    with torch.no_grad():
        ref_example = flatten_outputs(model(*example))
    out_names = [f"output_{i}" for i in range(len(ref_example))]
    out_axes = {n: {a: f"{n}_dim{a}" for a in range(t.dim())} for n, t in zip(out_names, ref_example, strict=True)}
    cases = unseen_inputs(module, example, names, tensors, paths, axes)
    refs = []
    with torch.no_grad():
        for label, args in cases:
            try:
                refs.append(flatten_outputs(model(*args)))
            except Exception as err:  # noqa: BLE001
                raise RuntimeError(f"eager model fails on unseen shape {label}: {first_line(err)}") from err

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        result["stage"] = "export"
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if part == "torchscript":
                torch.onnx.export(
                    model,
                    example,
                    str(onnx_path),
                    dynamo=False,
                    input_names=names,
                    output_names=out_names,
                    dynamic_axes={**axes, **out_axes},
                )
            else:
                dynamic_shapes = []
                for i, value in enumerate(example):
                    if value is None:
                        dynamic_shapes.append(None)
                    elif isinstance(value, (tuple, list)):
                        dynamic_shapes.append(
                            tuple(axes.get(names[k]) or None for k, p in enumerate(paths) if p[0] == i)
                        )
                    else:
                        k = paths.index((i,))
                        dynamic_shapes.append(axes.get(names[k]) or None)
                torch.onnx.export(
                    model,
                    example,
                    str(onnx_path),
                    dynamo=True,
                    input_names=names,
                    output_names=out_names,
                    dynamic_shapes=tuple(dynamic_shapes),
                    external_data=False,
                )
        result["export_s"] = round(time.perf_counter() - start, 2)
        result["tracer_warnings"] = sorted(
            {str(w.message).splitlines()[0][:200] for w in caught if w.category.__name__ == "TracerWarning"}
        )
        result["stage"] = "onnxruntime"
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        feed_names = [i.name for i in session.get_inputs()]
        result["onnx_inputs"] = feed_names

        def run(args: tuple[Any, ...]) -> list[Any]:
            flat = flatten_args(args)
            by_name = dict(zip(names, flat, strict=True))
            feed = {n: by_name[n].detach().cpu().numpy() for n in feed_names if n in by_name}
            missing = [n for n in feed_names if n not in by_name]
            if missing:
                # The exporter renamed or dropped inputs: feed by position instead.
                feed = {n: t.detach().cpu().numpy() for n, t in zip(feed_names, flat, strict=False)}
            return session.run(None, feed)

        checks = []
        try:
            delta, ok, note = compare(ref_example, run(example))
            checks.append({"shape": "example", "max_abs": delta, "pass": ok, "note": note})
        except Exception as err:  # noqa: BLE001
            checks.append({"shape": "example", "max_abs": None, "pass": False, "note": first_line(err)})
        for (label, args), ref in zip(cases, refs, strict=True):
            try:
                delta, ok, note = compare(ref, run(args))
                checks.append({"shape": label, "max_abs": delta, "pass": ok, "note": note})
            except Exception as err:  # noqa: BLE001
                checks.append({"shape": label, "max_abs": None, "pass": False, "note": first_line(err)})
        result["checks"] = checks
        proto = onnx.load(str(onnx_path))
        result["ops"] = sorted({n.op_type for n in proto.graph.node})
        result["opset"] = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    unseen = [c for c in checks if c["shape"] != "example"]
    result["status"] = "passed" if unseen and all(c["pass"] for c in unseen) else "failed"
    finite = [c["max_abs"] for c in unseen if c["max_abs"] is not None]
    result["max_abs_unseen"] = max(finite) if finite else None
    result["stage"] = "done"


# --------------------------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------------------------


def run_part(part: str, path: Path, timeout: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", part, str(path), str(result_path)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            stage_file = result_path.with_suffix(".stage")
            stage = stage_file.read_text(encoding="utf-8") if stage_file.exists() else "start"
            return {
                "part": part,
                "status": "timeout",
                "stage": stage,
                "error": f"timed out after {timeout} s in {stage}",
            }
        wall = round(time.perf_counter() - start, 1)
        if result_path.exists():
            result = json.loads(result_path.read_text(encoding="utf-8"))
        else:
            stage_file = result_path.with_suffix(".stage")
            stage = stage_file.read_text(encoding="utf-8") if stage_file.exists() else "start"
            code = proc.returncode
            how = f"exit {code}"
            if code < 0:
                try:
                    how = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"killed by signal {-code}"
            tail = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
            result = {
                "part": part,
                "status": "crashed",
                "stage": stage,
                "error": f"process {how} during {stage}",
                "stderr_tail": "\n".join(tail[-5:]),
            }
        result["wall_s"] = wall
        return result


INFERRED_WRAPPER = """\
# The zoo's {name}.py with its dynamic axes left out, so export-module infers them (written by zoo/run.py).
import importlib.util
import sys

sys.path.insert(0, {folder!r})
_spec = importlib.util.spec_from_file_location("zoo_model_{name}", {path!r})
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def make():
    made = _module.make()
    return made[0], made[1]
"""


def run_cli(path: Path, timeout: int, infer_axes: bool = False) -> dict[str, Any]:
    """``lstm-onnx export-module FILE.py:make`` as a user runs it; with ``infer_axes``, on a copy of the factory that
    returns no dynamic axes (export-module then infers them)."""
    exe = Path(sys.executable).parent / "lstm-onnx"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        target = str(path.relative_to(REPO))
        if infer_axes:
            wrapper = Path(tmp) / path.name
            wrapper.write_text(
                INFERRED_WRAPPER.format(name=path.stem, folder=str(path.parent), path=str(path)), encoding="utf-8"
            )
            target = str(wrapper)
        cmd = [str(exe), "export-module", f"{target}:make", "--out", str(out)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "exit_code": None, "error": f"timed out after {timeout} s"}
        wall = round(time.perf_counter() - start, 1)
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        # export-module's own refusals are one "error: ..." line; an uncaught exception ends a (rich) traceback with
        # "SomeError: message" that may wrap over several lines.
        crashed = any("Traceback" in ln or ln.startswith("╭") for ln in lines)
        start_at = next(
            (
                i
                for i in range(len(lines) - 1, -1, -1)
                if re.match(r"^(error:|[A-Za-z_.]+(Error|Exception)\b)", lines[i])
            ),
            len(lines) - 1,
        )
        result: dict[str, Any] = {
            "exit_code": proc.returncode,
            "wall_s": wall,
            "last_stderr": " ".join(lines[start_at:]) if lines else "",
            "uncaught_exception": crashed,
            "stderr_tail": "\n".join(lines[-15:]),
        }
        report = out / "parity.json"
        if report.exists():
            data = json.loads(report.read_text(encoding="utf-8"))
            result["parity"] = data
            for backend in data.get("backends", []):
                if backend.get("name") == "ort-cpu":
                    diffs = backend.get("max_abs_diff") or {}
                    result["ort_cpu"] = {
                        "status": backend.get("status"),
                        "reason": backend.get("reason"),
                        "max_abs_diff": max(diffs.values()) if diffs else None,
                    }
        result["status"] = "exported" if proc.returncode == 0 else "crashed" if crashed else "refused"
        result["model_written"] = (out / "model.onnx").exists()
        return result


def fmt_delta(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.1e}"


def cell(text: str, limit: int = 160) -> str:
    text = text.replace("|", "\\|").replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def onnx_cell(r: dict[str, Any]) -> str:
    status = r.get("status")
    if status == "skipped":
        return "skipped"
    if status in ("timeout", "crashed"):
        return f"**{status}**: `{cell(r.get('error', ''))}`"
    if status == "error":
        stage = r.get("stage", "")
        where = {"make": "factory", "export": "export", "onnxruntime": "ORT"}.get(stage, stage)
        return f"**fails ({where})**: `{cell(r.get('error', ''))}`"
    unseen = [c for c in r.get("checks", []) if c["shape"] != "example"]
    example = next((c for c in r.get("checks", []) if c["shape"] == "example"), None)
    if status == "passed":
        return f"pass, max Δ {fmt_delta(r.get('max_abs_unseen'))}"
    bad = [c for c in unseen if not c["pass"]]
    # A graph that ran and gave wrong numbers or a wrong shape is worse than one that raised: show it first.
    silent = [c for c in bad if c.get("max_abs") is not None]
    first = (silent or bad or [{}])[0]
    why = first.get("note") or f"max Δ {fmt_delta(first.get('max_abs'))}"
    ex = ""
    if example is not None:
        ex = f"; example shape {'pass' if example['pass'] else 'FAIL'} (Δ {fmt_delta(example['max_abs'])})"
    kind = " **ran without error, wrong result**" if silent else ""
    return f"**FAIL** {len(bad)}/{len(unseen)} unseen shapes;{kind} {first.get('shape', '')}: `{cell(why, 120)}`{ex}"


def cli_cell(r: dict[str, Any]) -> str:
    if r.get("status") == "skipped":
        return "skipped"
    if r.get("status") == "timeout":
        return f"**timeout**: {r.get('error')}"
    if r.get("exit_code") == 0:
        ort_cpu = r.get("ort_cpu") or {}
        diff = ort_cpu.get("max_abs_diff")
        return f"exported (ort-cpu {fmt_delta(diff) if isinstance(diff, (int, float)) else 'passed'})"
    how = "**uncaught exception**, exit" if r.get("uncaught_exception") else "exit"
    return f"{how} {r.get('exit_code')}: `{cell(r.get('last_stderr', ''))}`"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | library (version) | export-module | export-module, axes inferred "
        "| torch.onnx TorchScript (unseen shapes) | torch.onnx dynamo (unseen shapes) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['library']} {row['version']} | {cli_cell(row['export_module'])} "
            f"| {cli_cell(row['export_module_inferred'])} | {onnx_cell(row['torchscript'])} "
            f"| {onnx_cell(row['dynamo'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="model name(s), comma-separated; repeatable")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per model and exporter")
    parser.add_argument("--skip", action="append", default=[], help="parts to skip: torchscript, dynamo, cli")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a previous --json: skipped parts are taken from it (e.g. rerun only the export-module columns with "
        "--skip torchscript,dynamo after an exporter change; the torch.onnx columns do not depend on it)",
    )
    parser.add_argument("--worker", nargs=3, metavar=("PART", "FILE", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        part, file, result = args.worker
        worker(part, Path(file), Path(result))
        return
    only = [n.strip() for group in args.only or [] for n in group.split(",") if n.strip()] or None
    skip = {s for group in args.skip for s in group.split(",")}
    reused = {}
    if args.reuse:
        reused = {r["model"]: r for r in json.loads(args.reuse.read_text(encoding="utf-8"))["rows"]}
    rows = []
    versions = {"torch": importlib.metadata.version("torch"), "onnxruntime": importlib.metadata.version("onnxruntime")}
    for path in model_files(only):
        dist, version = library_of(path)
        row: dict[str, Any] = {"model": path.stem, "library": dist, "version": version}
        old = reused.get(path.stem, {})
        for part in PARTS:
            row[part] = old.get(part, {"status": "skipped"}) if part in skip else run_part(part, path, args.timeout)
        for key, infer in (("export_module", False), ("export_module_inferred", True)):
            row[key] = old.get(key, {"status": "skipped"}) if "cli" in skip else run_cli(path, args.timeout, infer)
        summary = " / ".join(
            str(row[k].get("status")) for k in ("export_module", "export_module_inferred", "torchscript", "dynamo")
        )
        print(f"{path.stem}: {summary}", file=sys.stderr, flush=True)
        rows.append(row)
    print(f"torch {versions['torch']}, onnxruntime {versions['onnxruntime']}; judge |Δ| <= {ATOL:g} + {RTOL:g}·|torch|")
    print()
    print(table(rows))
    if args.json:
        text = json.dumps({"versions": versions, "atol": ATOL, "rtol": RTOL, "rows": rows}, indent=2, default=str)
        args.json.write_text(text.replace(str(REPO) + "/", "") + "\n", encoding="utf-8")  # no machine paths


if __name__ == "__main__":
    main()
