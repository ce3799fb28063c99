"""verify_parity: prove an ONNX model computes what the trained PyTorch model computes, and fail loudly if not.

Backends compared with PyTorch (eager, the run's own ``BiLSTMClassifier``):

- ``onnxruntime-cpu``: every case.
- ``onnxruntime-cuda``: every case, only when a session really runs on CUDA; else recorded as skipped.
- ``onnx-reference``: ``onnx.reference.ReferenceEvaluator`` on a small sample. Its LSTM ignores
  ``sequence_lens``, so each sampled text is fed alone and unpadded, and compared with the same text's torch
  logits inside its padded batch (which also proves padding does not leak in torch).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from onnx.reference import ReferenceEvaluator

from lstm_onnx.exporter.cases import INVARIANCE_PAIRS, Case, bucket_cases, generated_cases
from lstm_onnx.exporter.tolerances import CUDA, FP32, REFERENCE, VARIANT_MAX_ACCURACY_DROP, Criteria, within
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS, LOGITS
from lstm_onnx.runtime.datasets import LabelledTexts, check_labels
from lstm_onnx.runtime.errors import ParityError
from lstm_onnx.runtime.json_text import dump_json, finite_or_null
from lstm_onnx.runtime.predictor import softmax
from lstm_onnx.runtime.provenance import describe_data
from lstm_onnx.runtime.session import ModelSession, SessionConfig, create_session, probe_cuda
from lstm_onnx.runtime.tokenizer import Tokenizer, require_tokens
from lstm_onnx.trainer.run_dir import LoadedRun

__all__ = ["BackendSummary", "CaseResult", "ParityReport", "verify_parity"]

CPU = "onnxruntime-cpu"
CUDA_BACKEND = "onnxruntime-cuda"
REFERENCE_BACKEND = "onnx-reference"
Progress = Callable[[str, int, int], None]


@dataclass
class CaseResult:
    """One backend on one case (or one invariance or accuracy check)."""

    backend: str
    case: str
    batch_size: int
    max_length: int
    max_abs_diff: float
    max_rel_diff: float
    max_prob_diff: float
    label_agreement: float
    failures: list[str] = field(default_factory=list)
    texts_over_prob_limit: int = 0

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failures


@dataclass
class BackendSummary:
    """Aggregate over a backend's cases.

    Attributes:
        status: ``"passed"``, ``"failed"``, ``"skipped"`` or ``"not verifiable"``.
        reason: Why a backend was skipped or not verifiable.
        texts: Texts compared.
        accuracy / torch_accuracy / accuracy_delta_points: On labelled data only.
    """

    status: str
    criteria: dict[str, float | None]
    reason: str = ""
    cases: int = 0
    texts: int = 0
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    max_prob_diff: float = 0.0
    label_agreement: float = 1.0
    labelled_texts: int = 0
    accuracy: float | None = None
    torch_accuracy: float | None = None
    accuracy_delta_points: float | None = None
    share_over_prob_limit: float | None = None


@dataclass
class ParityReport:
    """Everything ``verify_parity`` measured. ``summary()`` goes into the manifest, ``to_dict()`` into --report."""

    passed: bool
    variant: str
    atol: float | None
    rtol: float | None
    backends: dict[str, BackendSummary]
    results: list[CaseResult]
    failures: list[str]
    shapes_checked: list[list[int]]
    environment: dict[str, Any]
    data: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The manifest's ``parity`` block: per-backend summaries, shapes, failures; no per-case rows."""
        return {
            "passed": self.passed,
            "variant": self.variant,
            "atol": self.atol,
            "rtol": self.rtol,
            "backends": {name: asdict(b) for name, b in self.backends.items()},
            "shapes_checked": self.shapes_checked,
            "failures": self.failures,
            "environment": self.environment,
            "data": self.data,
        }

    def to_dict(self) -> dict[str, Any]:
        """The full report, every case included."""
        return {**self.summary(), "cases": [{**asdict(r), "passed": r.passed} for r in self.results]}


def _cpu_session(path: Path, threads: int) -> ModelSession:
    return create_session(
        Path(path), SessionConfig(providers="cpu", intra_op_threads=threads, graph_optimization="all")
    )


def _cuda_session(path: Path) -> tuple[ModelSession | None, str]:
    """A session that really runs on CUDA (runtime.session probes an LSTM with CPU fallback off), or why not."""
    config = SessionConfig(providers="cuda", graph_optimization="all")
    usable, reason = probe_cuda(config)
    if not usable:
        return None, f"skipped: no CUDA device ({reason})"
    return create_session(Path(path), config), ""


def _compare(
    backend: str, case: str, got: NDArray[np.float32], want: NDArray[np.float32], criteria: Criteria
) -> CaseResult:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    rel = diff / np.maximum(np.abs(want), 1e-12)
    text_prob_diff = np.abs(softmax(got).astype(np.float64) - softmax(want)).max(axis=1)  # (B,)
    prob_diff = float(text_prob_diff.max())
    agree = float((got.argmax(axis=1) == want.argmax(axis=1)).mean())
    result = CaseResult(backend, case, got.shape[0], 0, float(diff.max()), float(rel.max()), prob_diff, agree)
    if not np.isfinite(got).all():
        result.failures.append(f"{backend}/{case}: non-finite logits")
    if criteria.atol is not None and criteria.rtol is not None:
        if not within(got, want, criteria.atol, criteria.rtol).all():
            result.failures.append(
                f"{backend}/{case}: max abs diff {result.max_abs_diff:.3g} exceeds atol {criteria.atol:g} "
                f"+ rtol {criteria.rtol:g} * |torch|"
            )
    if criteria.max_prob_diff is not None:
        result.texts_over_prob_limit = int((text_prob_diff > criteria.max_prob_diff).sum())
    if criteria.max_prob_diff is not None and criteria.prob_quantile >= 1.0 and prob_diff > criteria.max_prob_diff:
        result.failures.append(f"{backend}/{case}: max prob diff {prob_diff:.3g} > {criteria.max_prob_diff:g}")
    if criteria.min_label_agreement >= 1.0 and agree < 1.0:
        result.failures.append(f"{backend}/{case}: labels differ for {round((1 - agree) * got.shape[0])} text(s)")
    return result


def _torch_logits(run: LoadedRun, case: Case) -> NDArray[np.float32]:
    with torch.inference_mode():
        out = run.model(torch.from_numpy(case.ids), torch.from_numpy(case.lengths))
    logits: NDArray[np.float32] = out.numpy().astype(np.float32)
    return logits


def _encode_data(
    run: LoadedRun, data: LabelledTexts, batch_size: int, tokenizer: Tokenizer | None
) -> tuple[list[Case], int]:
    check_labels(data, run.labels)
    tokenizer = tokenizer or Tokenizer(run.tokenizer_config, rules=run.tokenizer_rules)
    ids, targets = [], []
    skipped = 0
    index = {label: i for i, label in enumerate(run.labels)}
    for position, (tokens, label) in enumerate(zip(tokenizer.pipe(data.texts), data.labels, strict=True)):
        require_tokens(tokens, position, data.texts[position], data.source)  # the one rule of every path
        ids.append(run.vocab.encode(tokens))
        targets.append(index[label])
    return bucket_cases(ids, targets, batch_size), skipped


def _aggregate_failure(backend: str, case: str, texts: int, agreement: float, message: str) -> CaseResult:
    """A failed check over many texts of one backend (label agreement, probability budget, accuracy drop)."""
    return CaseResult(backend, case, texts, 0, 0.0, 0.0, 0.0, agreement, [f"{backend}/{case}: {message}"])


def _summarize(
    name: str, criteria: Criteria, results: list[CaseResult], texts: int, agree_sum: float
) -> BackendSummary:
    summary = BackendSummary(status="passed", criteria=asdict(criteria), cases=len(results), texts=texts)
    if results:
        summary.max_abs_diff = max(r.max_abs_diff for r in results)
        summary.max_rel_diff = max(r.max_rel_diff for r in results)
        summary.max_prob_diff = max(r.max_prob_diff for r in results)
    summary.label_agreement = agree_sum / texts if texts else 1.0
    if criteria.max_prob_diff is not None and criteria.prob_quantile < 1.0 and texts:
        over = sum(r.texts_over_prob_limit for r in results)
        summary.share_over_prob_limit = over / texts
        if summary.share_over_prob_limit > 1.0 - criteria.prob_quantile:
            results.append(
                _aggregate_failure(
                    name,
                    "all",
                    texts,
                    summary.label_agreement,
                    f"{over} of {texts} texts moved by more than {criteria.max_prob_diff:g} in probability; "
                    f"at most {1.0 - criteria.prob_quantile:.0%} may",
                )
            )
    return summary


def verify_parity(
    model_path: Path,
    run: LoadedRun,
    *,
    variant: str = "fp32",
    criteria: Criteria = FP32,
    data: LabelledTexts | None = None,
    batch_size: int = 64,
    seed: int = 0,
    threads: int = 1,
    reference_sample: int = 8,
    tokenizer: Tokenizer | None = None,
    report_path: Path | None = None,
    progress: Progress | None = None,
) -> ParityReport:
    """Compare ``model_path`` with the run's PyTorch model on generated cases and (optionally) real texts.

    Args:
        model_path: The ONNX graph (inputs ``input_ids`` (B, T) int64, ``lengths`` (B) int64; output
            ``logits`` (B, C) float32).
        run: The trained run it was exported from.
        variant: ``fp32``, ``optimized``, ``int8`` or ``fp16`` (recorded; fp32 uses per-backend fp32 criteria).
        criteria: What ORT CPU (and, for variants, every backend) must meet.
        data: Labelled real texts, tokenized with ``tokenizer`` and the run's vocabulary; also gives accuracies.
        tokenizer: What tokenizes ``data``: the bundle's own (its ``tokenizer.json``) when verifying a bundle;
            default the run's settings and pinned rules.
        batch_size: Texts per length bucket for ``data``.
        seed: Seeds the generated cases.
        threads: ORT intra-op threads.
        reference_sample: How many texts the reference evaluator checks (slow: pure numpy).
        report_path: Where to write the full JSON report (written before any ParityError is raised).
        progress: Called as ``progress(backend, done, total)``.

    Returns:
        The report (``passed`` is True).

    Raises:
        ParityError: Any case failed on any backend; lists every failing case with its diff and tolerance.
    """
    cases = generated_cases(run.model_config.vocab_size, seed)
    skipped_texts = 0
    if data is not None:
        data_cases, skipped_texts = _encode_data(run, data, batch_size, tokenizer)
        cases += data_cases
    want: dict[str, NDArray[np.float32]] = {}
    for done, case in enumerate(cases, 1):
        want[case.name] = _torch_logits(run, case)
        if progress:
            progress("torch", done, len(cases))

    results: list[CaseResult] = []
    backends: dict[str, BackendSummary] = {}
    exact = variant == "fp32"
    cpu_session = _cpu_session(model_path, threads)
    cuda_session, cuda_reason = _cuda_session(model_path)
    for name, session, crit in (
        (CPU, cpu_session, criteria),
        (CUDA_BACKEND, cuda_session, CUDA if exact else criteria),
    ):
        if session is None:
            backends[name] = BackendSummary(status="skipped", criteria=asdict(crit), reason=cuda_reason)
            continue
        got, own, texts, agree_sum = {}, [], 0, 0.0
        correct = gold_total = torch_correct = 0
        for done, case in enumerate(cases, 1):
            got[case.name] = session.run(case.ids, case.lengths).astype(np.float32)
            result = _compare(name, case.name, got[case.name], want[case.name], crit)
            result.max_length = int(case.lengths.max())
            own.append(result)
            texts += len(case.lengths)
            agree_sum += result.label_agreement * len(case.lengths)
            if case.targets is not None:
                correct += int((got[case.name].argmax(axis=1) == case.targets).sum())
                torch_correct += int((want[case.name].argmax(axis=1) == case.targets).sum())
                gold_total += len(case.targets)
            if progress:
                progress(name, done, len(cases))
        for (case_a, row_a), (case_b, row_b) in INVARIANCE_PAIRS:
            inv = _compare(
                name,
                f"invariance:{case_a}[{row_a}]~{case_b}[{row_b}]",
                got[case_b][row_b : row_b + 1],
                got[case_a][row_a : row_a + 1],
                crit,
            )
            own.append(inv)
        summary = _summarize(name, crit, own, texts, agree_sum)
        if gold_total:
            summary.labelled_texts = gold_total
            summary.accuracy = correct / gold_total
            summary.torch_accuracy = torch_correct / gold_total
            summary.accuracy_delta_points = 100.0 * (summary.accuracy - summary.torch_accuracy)
            # Every derived variant (int8, fp16, optimized) may cost at most VARIANT_MAX_ACCURACY_DROP points.
            if variant != "fp32" and summary.accuracy_delta_points < -VARIANT_MAX_ACCURACY_DROP:
                own.append(
                    _aggregate_failure(
                        name,
                        "accuracy",
                        gold_total,
                        summary.label_agreement,
                        f"{summary.accuracy_delta_points:+.2f} points vs fp32 torch; "
                        f"allowed drop {VARIANT_MAX_ACCURACY_DROP}",
                    )
                )
        if crit.min_label_agreement < 1.0 and summary.label_agreement < crit.min_label_agreement:
            own.append(
                _aggregate_failure(
                    name,
                    "all",
                    texts,
                    summary.label_agreement,
                    f"label agreement {summary.label_agreement:.4f} < {crit.min_label_agreement}",
                )
            )
        summary.status = "failed" if any(not r.passed for r in own) else "passed"
        backends[name] = summary
        results += own

    reference = REFERENCE if exact else criteria
    backends[REFERENCE_BACKEND], ref_results = _verify_reference(model_path, cases, want, reference, reference_sample)
    results += ref_results

    failures = [f for r in results for f in r.failures]
    report = ParityReport(
        passed=not failures,
        variant=variant,
        atol=criteria.atol,
        rtol=criteria.rtol,
        backends=backends,
        results=results,
        failures=failures,
        shapes_checked=sorted({(int(c.ids.shape[0]), int(c.ids.shape[1])) for c in cases}),  # type: ignore[misc]
        environment={
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": threads,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "cpu_providers": cpu_session.session.get_providers(),
        },
        data={
            "source": describe_data(data) if data is not None else None,
            "texts": len(data) if data is not None else 0,
            "skipped_empty": skipped_texts,
        },
    )
    report.shapes_checked = [list(s) for s in report.shapes_checked]
    if report_path is not None:
        # A model returning NaN fails above; its report says so with null, never with NaN (which is not JSON).
        Path(report_path).write_text(dump_json(finite_or_null(report.to_dict())) + "\n", encoding="utf-8")
    if failures:
        shown = "\n  ".join(failures[:20])
        more = f"\n  ... and {len(failures) - 20} more (see the report)" if len(failures) > 20 else ""
        raise ParityError(
            f"Parity check failed for {model_path} ({variant}) in {len(failures)} check(s):\n  {shown}{more}\n"
            "Do not ship this model; re-export it, or rerun `lstm-onnx verify --report PATH` for details."
        )
    return report


def _verify_reference(
    model_path: Path,
    cases: list[Case],
    want: dict[str, NDArray[np.float32]],
    criteria: Criteria,
    sample: int,
) -> tuple[BackendSummary, list[CaseResult]]:
    graph = onnx.load(str(model_path))
    foreign = sorted({n.domain for n in graph.graph.node if n.domain not in ("", "ai.onnx")})
    if foreign:
        reason = f"not verifiable: the reference evaluator has no kernels for domain(s) {foreign}"
        return BackendSummary(status="not verifiable", criteria=asdict(criteria), reason=reason), []
    evaluator: Any = ReferenceEvaluator(graph)  # typed stubs say run() returns a dict; it returns a list
    # Short texts from every case first (one per case, round-robin), so the sample spans many shapes cheaply.
    picks: list[tuple[Case, int]] = []
    for row in range(max(len(c.lengths) for c in cases)):
        for case in cases:
            if len(picks) < sample and row < len(case.lengths) and case.lengths[row] <= 64:
                picks.append((case, row))
    results, agree_sum = [], 0.0
    for case, row in picks:
        length = int(case.lengths[row])
        feed = {INPUT_IDS: case.ids[row : row + 1, :length], LENGTHS: case.lengths[row : row + 1]}
        got = np.asarray(evaluator.run([LOGITS], feed)[0], dtype=np.float32)
        result = _compare(REFERENCE_BACKEND, f"{case.name}[{row}]", got, want[case.name][row : row + 1], criteria)
        result.max_length = length
        results.append(result)
        agree_sum += result.label_agreement
    summary = _summarize(REFERENCE_BACKEND, criteria, results, len(results), agree_sum)
    summary.status = "failed" if any(not r.passed for r in results) else "passed"
    return summary, results
