"""Training, export and ``verify`` stages: the project's own commands, run as a user runs them (``python -m
lstm_onnx ...``), each stopped at its budget; plus a check of the exported graphs against what cuDNN accepts.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstm_onnx.bench.gpu_proof.config import ProofConfig
from lstm_onnx.bench.gpu_proof.stages import CommandResult, Deadline, python_env, run_command

__all__ = ["audit_graph", "export_stage", "tagger_stage", "train_stage", "verify_stage"]

# Kept back of the training budget to test the kept weights when the epochs are stopped (a fresh process reads and
# tokenizes the data again, then makes one pass over the test reviews): 30%, at least 20 s. On the 2-core machine,
# busy, the tiny preset's resume took 15 s.
_RESUME_SHARE = 0.3
_RESUME_MIN_S = 20.0
# ONNX TensorProto element types.
_FLOAT, _INT32, _INT64, _FLOAT16 = 1, 6, 7, 10
_DTYPES = {_FLOAT: "float32", _INT32: "int32", _INT64: "int64", _FLOAT16: "float16"}


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "lstm_onnx", *(str(a) for a in args)]


def _fresh(path: Path) -> Path:
    """An empty place for a run or bundle (the kit owns its work folder)."""
    if path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _epochs_done(run_dir: Path) -> int:
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        return 0
    return len(json.loads(metrics.read_text(encoding="utf-8")).get("history", []))


def _train_within(
    argv: list[str], run_dir: Path, deadline: Deadline, log: Path, env: dict[str, str]
) -> list[CommandResult]:
    """Train; with 30% of the budget left stop the epochs (Ctrl-C) and test the kept weights (``--resume`` with the
    epochs done), as a user whose time ran out would."""
    reserve = max(_RESUME_SHARE * deadline.left(), _RESUME_MIN_S)
    first = run_command(argv, deadline.left() - reserve, env, log)
    done = _epochs_done(run_dir)
    if not first.interrupted or done == 0:
        return [first]
    capped = [a for i, a in enumerate(argv) if a != "--epochs" and (i == 0 or argv[i - 1] != "--epochs")]
    return [first, run_command([*capped, "--resume", "--epochs", str(done)], max(deadline.left(), 1.0), env, log)]


def _train_record(commands: list[CommandResult], run_dir: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"commands": [c.to_dict() for c in commands], "run_dir": run_dir.as_posix()}
    record["stopped_at_budget"] = commands[0].interrupted
    if len(commands) == 1 and commands[0].interrupted:
        seconds = commands[0].seconds
        reason = f"stopped at its budget ({seconds:.0f} s) before an epoch ended: no weights to test"
        record.update(passed=False, reason=reason)
        return record
    if not commands[-1].ok:
        record.update(passed=False, reason=f"`{commands[-1].command}` ended with status {commands[-1].returncode}")
        return record
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    test = metrics.get("test") or {}
    epochs = metrics.get("epoch_seconds")
    info = metrics.get("info", {})
    record.update(
        epochs_run=len(metrics["history"]),
        best_epoch=metrics["best_epoch"],
        stopped_early=metrics["stopped_early"],
        epoch_seconds=epochs,
        val_accuracy=[h.get("val_accuracy") for h in metrics["history"]],
        test_accuracy=test.get("accuracy"),
        test_texts=test.get("n", test.get("tokens")),
        total_seconds=info.get("total_seconds", metrics.get("total_seconds")),
        prepare_seconds=info.get("prepare_seconds"),
        device=info.get("device"),
    )
    return record


def _common_train_args(config: ProofConfig) -> list[str | Path]:
    args: list[str | Path] = ["--device", config.device, "--seed", str(config.seed)]
    if config.embeddings is not None:
        args += ["--embeddings", config.embeddings]
    if config.tokenizer_rules is not None:
        args += ["--tokenizer-rules", config.tokenizer_rules]
    return args


def train_stage(config: ProofConfig, deadline: Deadline, log: Path) -> dict[str, Any]:
    """``lstm-onnx train`` with the configured preset (``gpu``: cuDNN, mixed precision), tokenizing on every core.

    Training runs with PyTorch's own TF32 defaults (``NVIDIA_TF32_OVERRIDE`` is dropped from its environment): it
    is timed as a user would run it. Returns epochs, seconds per epoch, validation and test accuracy.
    """
    run_dir = _fresh(config.work_dir / "run-classify")
    settings = config.work_dir / "train-settings.json"
    settings.write_text(json.dumps({"train": {"tokenize_workers": config.workers}}) + "\n", encoding="utf-8")
    argv = _cli("train", config.data, "--preset", config.preset, "--out", run_dir, "--config", settings)
    argv += [str(a) for a in _common_train_args(config)]
    if config.epochs is not None:
        argv += ["--epochs", str(config.epochs)]
    env = python_env(drop=("NVIDIA_TF32_OVERRIDE",))
    record = _train_record(_train_within(argv, run_dir, deadline, log, env), run_dir)
    record["settings_file"] = json.loads(settings.read_text(encoding="utf-8"))
    return record


def audit_graph(model: Path) -> dict[str, Any]:
    """What the exported graph asks of ONNX Runtime's CUDA provider, and every rule it breaks.

    cuDNN runs an ONNX ``LSTM`` only with ``layout`` 0 (ORT refuses 1), ``sequence_lens`` int32 (a ``Cast`` in
    the graph: callers feed int64 ``lengths``), default activations and no ``clip`` (else the node runs on the
    CPU), and prepares the weights once only when they are constant initializers. An fp16 graph must keep float32
    ``logits`` (``keep_io_types``) and int64 inputs.

    Returns:
        ``{"inputs", "outputs", "lstm": [per node], "problems": [...]}``.
    """
    import onnx

    graph = onnx.shape_inference.infer_shapes(onnx.load(str(model))).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    types.update({i.name: i.data_type for i in graph.initializer})
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {i.name for i in graph.initializer}
    problems: list[str] = []
    nodes = []
    for node in (n for n in graph.node if n.op_type == "LSTM"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        lens = node.input[4] if len(node.input) > 4 else ""
        source = producers.get(lens)
        entry = {
            "name": node.name,
            "layout": int(attrs.get("layout", 0)),
            "direction": attrs.get("direction", b"forward").decode(),
            "hidden_size": attrs.get("hidden_size"),
            "x_dtype": _DTYPES.get(types.get(node.input[0], 0), "unknown"),
            "sequence_lens_dtype": _DTYPES.get(types.get(lens, 0), "none") if lens else "none",
            "sequence_lens_from": source.op_type if source is not None else ("input" if lens else "none"),
            "weights_constant": all(name in initializers for name in node.input[1:4]),
        }
        nodes.append(entry)
        where = f"LSTM {node.name!r}"
        if entry["layout"] != 0:
            problems.append(f"{where}: layout={entry['layout']}; ORT's CUDA LSTM (cuDNN) accepts layout 0 only")
        if entry["sequence_lens_dtype"] != "int32":
            problems.append(f"{where}: sequence_lens is {entry['sequence_lens_dtype']}, not int32")
        if not entry["weights_constant"]:
            problems.append(f"{where}: weights are not constant initializers (re-prepared on every call)")
        if "clip" in attrs or "activations" in attrs:
            problems.append(f"{where}: clip/activations set; ORT runs such an LSTM on the CPU")
    inputs = {i.name: _DTYPES.get(i.type.tensor_type.elem_type, "other") for i in graph.input}
    outputs = {o.name: _DTYPES.get(o.type.tensor_type.elem_type, "other") for o in graph.output}
    problems += [f"input {n} is {t}, not int64" for n, t in inputs.items() if t != "int64"]
    problems += [f"output {n} is {t}, not float32" for n, t in outputs.items() if t != "float32"]
    if not nodes:
        problems.append("no LSTM node")
    return {"inputs": inputs, "outputs": outputs, "lstm": nodes, "problems": problems}


def _bundle_paths(config: ProofConfig) -> tuple[Path, Path]:
    fp32 = config.work_dir / "bundle"
    return fp32, fp32.with_name("bundle-fp16")


def export_stage(config: ProofConfig, deadline: Deadline, log: Path) -> dict[str, Any]:
    """``lstm-onnx export --fp16``: fp32 and fp16 bundles, each verified against PyTorch on the CPU.

    The GPU is hidden from the export (``CUDA_VISIBLE_DEVICES=``): its own parity check then covers ORT CPU only,
    and ORT CUDA is judged by the ``verify`` and ``parity`` stages, whose failure costs no bundle.
    """
    run_dir = config.work_dir / "run-classify"
    fp32, fp16 = _bundle_paths(config)
    for path in (fp32, fp16):
        _fresh(path)
    argv = _cli("export", run_dir, "--out", fp32, "--fp16", "--data", config.data, "--limit", str(config.export_limit))
    argv.append("--force")
    env = python_env(CUDA_VISIBLE_DEVICES="") if config.device == "cuda" else python_env()
    done = run_command(argv, deadline.left(), env, log)
    record: dict[str, Any] = {"command": done.to_dict(), "bundles": {"fp32": fp32.as_posix(), "fp16": fp16.as_posix()}}
    if not done.ok:
        return {**record, "passed": False, "reason": f"export ended with status {done.returncode}"}
    manifests = {
        name: json.loads((path / "manifest.json").read_text()) for name, path in (("fp32", fp32), ("fp16", fp16))
    }
    record["export_parity"] = {name: _parity_summary(m.get("parity", {})) for name, m in manifests.items()}
    return record


def _parity_summary(parity: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "reason", "max_abs_diff", "max_prob_diff", "label_agreement", "accuracy", "torch_accuracy")
    return {
        name: {k: backend.get(k) for k in keys if k in backend} for name, backend in parity.get("backends", {}).items()
    }


def verify_stage(config: ProofConfig, deadline: Deadline, log: Path) -> dict[str, Any]:
    """``lstm-onnx verify`` of the fp32 bundle with the GPU visible: the CLI's own check of ORT CUDA (when it really
    runs) and ORT CPU against PyTorch, with its report."""
    fp32, _ = _bundle_paths(config)
    report = config.work_dir / "verify-report.json"
    report.unlink(missing_ok=True)
    argv = _cli("verify", fp32, "--against", config.work_dir / "run-classify", "--data", config.data)
    argv += ["--limit", str(config.export_limit), "--report", str(report)]
    done = run_command(argv, deadline.left(), python_env(), log)
    record: dict[str, Any] = {"command": done.to_dict()}
    if report.is_file():
        record["parity"] = _parity_summary(json.loads(report.read_text(encoding="utf-8")))
    if not done.ok:
        record.update(passed=False, reason=f"verify ended with status {done.returncode}: {_last(done.output_tail)}")
    cuda = record.get("parity", {}).get("onnxruntime-cuda", {})
    if config.device == "cuda" and done.ok and cuda.get("status") != "passed":
        record.update(passed=False, reason=f"ORT CUDA was not verified: {cuda.get('reason') or cuda.get('status')}")
    return record


def _last(lines: Sequence[str]) -> str:
    return next((line for line in reversed(lines) if line.strip()), "")


def tagger_stage(config: ProofConfig, deadline: Deadline, log: Path) -> dict[str, Any]:
    """The tagging preset: ``lstm-onnx train --task tag`` on the tag data, then ``lstm-onnx export`` of the tagger
    with the GPU visible (its parity check then covers ORT CUDA where it runs)."""
    if config.tag_data is None:
        return {"passed": False, "reason": "no tag data given (--tag-data)"}
    run_dir = _fresh(config.work_dir / "run-tag")
    bundle = _fresh(config.work_dir / "bundle-tag")
    argv = _cli("train", config.tag_data, "--task", "tag", "--preset", config.preset, "--out", run_dir)
    argv += [str(a) for a in _common_train_args(config)]
    if config.tag_epochs is not None:
        argv += ["--epochs", str(config.tag_epochs)]
    export_budget = 0.3 * deadline.left()
    train_deadline = Deadline(deadline.end - export_budget, deadline.clock)
    commands = _train_within(argv, run_dir, train_deadline, log, python_env(drop=("NVIDIA_TF32_OVERRIDE",)))
    record = _train_record(commands, run_dir)
    if record.get("passed") is False:
        return record
    epochs = record["epochs_run"] or 1
    record["mean_epoch_seconds_incl_setup"] = (record["total_seconds"] or 0.0) / epochs
    export = run_command(
        _cli("export", run_dir, "--out", bundle, "--data", config.tag_data, "--force"),
        deadline.left(),
        python_env(),
        log,
    )
    record["export"] = export.to_dict()
    if not export.ok:
        record.update(
            passed=False, reason=f"tagger export ended with status {export.returncode}: {_last(export.output_tail)}"
        )
        return record
    parity = json.loads((bundle / "manifest.json").read_text(encoding="utf-8")).get("parity", {})
    # The tagger's export checks ORT on the CPU (one block, not one per backend).
    record["export_parity"] = {k: v for k, v in parity.items() if k != "failures"} | {
        "failures": parity.get("failures", [])[:5]
    }
    record["graph"] = audit_graph(bundle / "model.onnx")
    return record
