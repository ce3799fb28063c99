"""The proof's parity stage: PyTorch on the device (TF32 off) against ONNX Runtime on CUDA and on the CPU, fp32 and
fp16 bundles, on the exporter's generated cases and on real reviews; and where each graph node really ran.

Criteria are the exporter's (``exporter.tolerances``): fp32 on the CPU against PyTorch on the CPU uses ``FP32``;
any comparison across devices (ORT CUDA, or ORT CPU against PyTorch CUDA) uses ``CUDA``; fp16 uses ``FP16``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.bench.gpu_proof.stages import Deadline
from lstm_onnx.exporter.backends import OrtBackend, TorchModuleBackend
from lstm_onnx.exporter.cases import INVARIANCE_PAIRS, Case, bucket_cases, generated_cases
from lstm_onnx.exporter.tolerances import CUDA, FP16, FP32, Criteria
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS
from lstm_onnx.runtime.predictor import softmax
from lstm_onnx.runtime.session import CPU, SessionConfig
from lstm_onnx.runtime.session import CUDA as CUDA_PROVIDER

__all__ = ["Tally", "node_placement", "parity_stage", "review_cases"]

# A text alone against the same text in a padded batch of longer ones, fp16 (no logits tolerance of its own): the
# rows never interact, but another batch shape may take another kernel and order of fp16 sums. Not measured on a
# GPU yet; the fp16 bundles' CPU figure is 0.0 (README, tagging parity table).
_FP16_INVARIANCE = 1e-2


@dataclass
class Tally:
    """One backend against the reference over the cases it ran.

    Attributes:
        backend: Its name; ``criteria``: what it is held to; ``status``: passed/failed/skipped.
        max_abs_diff: Largest |Δlogit|; ``max_prob_diff``: largest |Δprobability|.
        texts: Texts compared; ``agree``: texts whose label matches the reference's.
        over_prob: Texts whose probabilities moved more than the criteria's ``max_prob_diff``.
        correct / labelled: Accuracy on the labelled reviews (``torch_correct``: the reference's).
        invariance_diff: |Δlogit| of a text alone against the same text inside a batch of longer texts.
        failures: Each broken criterion, with the case.
    """

    backend: str
    criteria: dict[str, Any]
    provider: str = ""
    status: str = "passed"
    reason: str = ""
    cases: int = 0
    texts: int = 0
    agree: int = 0
    over_prob: int = 0
    max_abs_diff: float = 0.0
    max_prob_diff: float = 0.0
    labelled: int = 0
    correct: int = 0
    torch_correct: int = 0
    invariance_diff: float = 0.0
    failures: list[str] = field(default_factory=list)

    def add(self, case: Case, got: NDArray[np.float32], want: NDArray[np.float32], crit: Criteria) -> None:
        """Compare one case's logits (B, C) with the reference's."""
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        prob = np.abs(softmax(got).astype(np.float64) - softmax(want)).max(axis=1)  # (B,)
        same = got.argmax(axis=1) == want.argmax(axis=1)
        self.cases += 1
        self.texts += len(same)
        self.agree += int(same.sum())
        self.max_abs_diff = max(self.max_abs_diff, float(diff.max()))
        self.max_prob_diff = max(self.max_prob_diff, float(prob.max()))
        if not np.isfinite(got).all():
            self.failures.append(f"{case.name}: non-finite logits")
        if crit.atol is not None and crit.rtol is not None and (diff > crit.atol + crit.rtol * np.abs(want)).any():
            self.failures.append(f"{case.name}: |Δlogit| {diff.max():.3g} > atol {crit.atol:g} + rtol {crit.rtol:g}")
        if crit.max_prob_diff is not None:
            self.over_prob += int((prob > crit.max_prob_diff).sum())
        if crit.min_label_agreement >= 1.0 and not same.all():
            self.failures.append(f"{case.name}: {int((~same).sum())} label(s) differ")
        if case.targets is not None:
            self.labelled += len(case.targets)
            self.correct += int((got.argmax(axis=1) == case.targets).sum())
            self.torch_correct += int((want.argmax(axis=1) == case.targets).sum())

    def judge(self, crit: Criteria) -> None:
        """Apply the criteria that hold over all texts (agreement, probability budget); set ``status``."""
        if self.texts and self.agree / self.texts < crit.min_label_agreement:
            self.failures.append(f"label agreement {self.agree / self.texts:.4f} < {crit.min_label_agreement}")
        if crit.max_prob_diff is not None and crit.prob_quantile < 1.0 and self.texts:
            if self.over_prob / self.texts > 1.0 - crit.prob_quantile:
                self.failures.append(f"{self.over_prob} of {self.texts} texts moved > {crit.max_prob_diff:g}")
        elif crit.max_prob_diff is not None and self.over_prob:
            self.failures.append(f"{self.over_prob} texts moved > {crit.max_prob_diff:g} in probability")
        limit = crit.atol if crit.atol is not None else _FP16_INVARIANCE
        if self.invariance_diff > limit:
            self.failures.append(f"a text alone vs in a padded batch differs by {self.invariance_diff:.3g} > {limit:g}")
        self.status = "failed" if self.failures else "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with agreement and accuracies as shares."""
        data = asdict(self)
        data["failures"] = self.failures[:20]
        data["label_agreement"] = self.agree / self.texts if self.texts else None
        data["accuracy"] = self.correct / self.labelled if self.labelled else None
        data["torch_accuracy"] = self.torch_correct / self.labelled if self.labelled else None
        return data


def review_cases(ids: list[list[int]], targets: list[int], batch_size: int, seed: int) -> list[Case]:
    """Real reviews in length buckets, in a seeded random order (so a budget cut still spans the lengths)."""
    cases = bucket_cases(ids, targets, batch_size, prefix="review")
    order = np.random.default_rng(seed).permutation(len(cases))
    return [cases[i] for i in order]


def _criteria(variant: str, device: str, reference_device: str) -> Criteria:
    if variant == "fp16":
        return FP16
    return FP32 if device == "cpu" and reference_device == "cpu" else CUDA


def _feed(case: Case) -> dict[str, NDArray[np.int64]]:
    return {INPUT_IDS: case.ids, LENGTHS: case.lengths}


def _invariance_gap(by_case: dict[str, NDArray[np.float32]]) -> float | None:
    """Largest |Δlogit| between a text alone and the same text in a padded batch (``None``: cases not run)."""
    gaps = [
        float(np.abs(by_case[alone][row_a] - by_case[longer][row_b]).max())
        for (alone, row_a), (longer, row_b) in INVARIANCE_PAIRS
        if alone in by_case and longer in by_case
    ]
    return max(gaps) if gaps else None


def node_placement(model: Path, config: SessionConfig, case: Case) -> dict[str, Any]:
    """Which execution provider ran each node of one call, read from ONNX Runtime's profiler.

    The session is a profiling twin of the one ``runtime.session`` builds (same options and provider list, plus
    the profiler); ONNX Runtime moves a node its CUDA provider cannot run to the CPU without saying so otherwise.

    Returns:
        ``{"nodes_by_provider": {provider: count}, "lstm": {node: provider}}``.
    """
    import onnxruntime as ort

    options = config.session_options()
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="lstm-onnx-profile.") as folder:
        options.profile_file_prefix = str(Path(folder) / "profile")
        providers: list[Any] = [CPU]
        if config.providers == "cuda":
            providers = [(CUDA_PROVIDER, config.cuda_options()), CPU]
        session = ort.InferenceSession(str(model), options, providers=providers)
        session.run(None, _feed(case))
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    lstm: dict[str, str] = {}
    seen: set[str] = set()
    for event in events:
        args, name = event.get("args", {}), str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time") or "provider" not in args or name in seen:
            continue
        seen.add(name)
        counts[args["provider"]] = counts.get(args["provider"], 0) + 1
        if args.get("op_name") == "LSTM":
            lstm[name.removesuffix("_kernel_time")] = args["provider"]
    return {"nodes_by_provider": counts, "lstm": lstm}


def parity_stage(
    device: str,
    deadline: Deadline,
    reference: TorchModuleBackend,
    bundles: dict[str, Path],
    reviews: list[Case],
    vocab_size: int,
    threads: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare every ONNX Runtime backend with ``reference`` on generated cases, then real reviews, until done or
    the deadline.

    Args:
        device: Where the proof runs (``cuda`` adds the ORT CUDA backends).
        deadline: No new case starts after it.
        reference: PyTorch on ``device`` (the run's model, eval mode, TF32 off).
        bundles: ``{"fp32": folder, "fp16": folder}``.
        reviews: Real-review cases (``review_cases``).
        vocab_size: For the generated cases' ids.
        threads: Intra-op threads of the ORT CPU sessions.
        seed: Seeds the generated cases.

    Returns:
        Per backend tallies, the cases run, node placement; ``passed`` False when a backend failed its criteria.
    """
    providers = ["cuda", "cpu"] if device == "cuda" else ["cpu"]
    backends: list[tuple[str, OrtBackend, Criteria]] = []
    skipped: dict[str, str] = {}
    for variant, folder in bundles.items():
        for provider in providers:
            name = f"ort-{provider}" + ("" if variant == "fp32" else f"-{variant}")
            threads_here = threads if provider == "cpu" else 1
            config = SessionConfig(providers=provider, intra_op_threads=threads_here, graph_optimization="all")
            backend = OrtBackend(name, folder / "model.onnx", config, batch_major=True)
            usable, why = backend.available()
            if usable:
                backends.append((name, backend, _criteria(variant, provider, device)))
            else:
                skipped[name] = why
    if device == "cpu":
        skipped.update({f"ort-cuda{s}": "--device cpu (the dry run)" for s in ("", "-fp16")})
    tallies = {name: Tally(name, asdict(crit), backend.provider) for name, backend, crit in backends}
    cases = generated_cases(vocab_size, seed) + reviews
    outputs: dict[str, dict[str, NDArray[np.float32]]] = {name: {} for name in ("reference", *tallies)}
    done = 0
    for case in cases:
        if deadline.expired():
            break
        want = reference.run(_feed(case))[0].astype(np.float32)
        outputs["reference"][case.name] = want
        for name, backend, crit in backends:
            got = backend.run(_feed(case))[0].astype(np.float32)
            outputs[name][case.name] = got
            tallies[name].add(case, got, want, crit)
        done += 1
    gaps = {name: _invariance_gap(by_case) for name, by_case in outputs.items()}
    for name, tally in tallies.items():
        tally.invariance_diff = gaps[name] or 0.0
    for name, _, crit in backends:
        tallies[name].judge(crit)
    placement = {}
    first = cases[min(2, len(cases) - 1)]
    for name, backend, _ in backends:
        placement[name] = node_placement(backend.model, backend.config, first)
    failed = [name for name, t in tallies.items() if t.status == "failed"]
    off_gpu = sorted(n for n, p in placement.items() if "cuda" in n and set(p["lstm"].values()) != {CUDA_PROVIDER})
    record: dict[str, Any] = {
        "reference": {"backend": reference.name, "device": device, "invariance_diff": gaps["reference"]},
        "cases_run": done,
        "cases_total": len(cases),
        "complete": done == len(cases),
        "reviews": sum(len(c.lengths) for c in reviews),
        "backends": {name: tally.to_dict() for name, tally in tallies.items()},
        "skipped": skipped,
        "placement": placement,
    }
    reasons = [f"{name} failed: {tallies[name].failures[0]}" for name in failed]
    reasons += [f"{name} did not run every LSTM node on {CUDA_PROVIDER}" for name in off_gpu]
    if device == "cuda":  # on the GPU machine, an ORT CUDA backend that cannot run is the finding, not a skip
        reasons += [f"{name} cannot run: {why}" for name, why in skipped.items()]
    if reasons:
        record.update(passed=False, reason="; ".join(reasons))
    return record
