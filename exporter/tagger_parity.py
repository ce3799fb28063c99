"""Tagger parity: PyTorch (the packed model) against an exported graph on ONNX Runtime, valid positions only.

Three measurements, then one judgement: generated batches (several B, T, W, unsorted lengths), padding
invariance (each sentence alone against the same sentence inside a padded batch of longer ones, on ORT), and
real labelled sentences (tag agreement and the accuracy of both). Measuring never raises; ``judge`` raises
``ParityError`` listing every failed criterion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstm_onnx.exporter.tolerances import VARIANT_MAX_ACCURACY_DROP, Criteria, within
from lstm_onnx.runtime.contract import CHAR_IDS, INPUT_IDS, LENGTHS, LOGITS
from lstm_onnx.runtime.errors import ParityError
from lstm_onnx.runtime.predictor import softmax
from lstm_onnx.runtime.session import SessionConfig, create_session
from lstm_onnx.runtime.tagging_data import TaggedSentences
from lstm_onnx.runtime.tagging_encode import encode
from lstm_onnx.trainer.tag_run import LoadedTagRun

__all__ = ["TagParity", "judge", "measure_tag_parity"]

_BATCHES = (1, 2, 5)
_STEPS = (1, 7, 16, 33)
# Padding invariance on fp32: a sentence alone and inside a padded batch agree to this (float rounding only).
PADDING_ATOL = 1e-5


@dataclass
class TagParity:
    """What was measured for one exported graph.

    Attributes:
        variant: ``fp32``, ``int8``, ``fp16``, ``optimized``.
        cases: Generated batches compared; sentences: sentences compared (generated + real); tokens: valid
            positions compared.
        max_abs_diff: Largest |Δlogit| over valid positions; within_tolerance: share of positions inside atol/rtol.
        max_prob_diff: Largest |Δprob|; p99_prob_diff: its 99th percentile over tokens.
        tag_agreement: Share of valid positions whose argmax tags agree.
        padding_max_diff: Largest |Δlogit| between a sentence alone and inside a padded batch (ORT).
        labelled_tokens, accuracy, torch_accuracy: Real-data token accuracy of the graph and of PyTorch.
        failures: Criteria not met (filled by ``judge``).
    """

    variant: str
    cases: int = 0
    sentences: int = 0
    tokens: int = 0
    max_abs_diff: float = 0.0
    within_tolerance: float = 1.0
    max_prob_diff: float = 0.0
    p99_prob_diff: float = 0.0
    tag_agreement: float = 1.0
    padding_max_diff: float = 0.0
    labelled_tokens: int = 0
    accuracy: float | None = None
    torch_accuracy: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy_delta_points(self) -> float | None:
        """(graph - PyTorch) accuracy in percentage points."""
        if self.accuracy is None or self.torch_accuracy is None:
            return None
        return 100.0 * (self.accuracy - self.torch_accuracy)

    def summary(self) -> dict[str, Any]:
        """JSON-able form (the manifest's ``parity`` block)."""
        return {**asdict(self), "accuracy_delta_points": self.accuracy_delta_points, "passed": not self.failures}


def _generated(run: LoadedTagRun, seed: int) -> list[list[list[str]]]:
    """Batches of random sentences drawn from the run's vocabularies, unsorted lengths, first row longest."""
    rng = np.random.default_rng(seed)
    words = run.vocab.itos[2:]
    chars = run.chars.itos[2:]
    batches = []
    for b in _BATCHES:
        for t in _STEPS:
            lengths = [t] + [int(x) for x in rng.integers(1, t + 1, size=b - 1)]
            rng.shuffle(lengths)
            batch = []
            for n in lengths:
                # Half the tokens are vocabulary words, half random character strings (unknown words, long ones).
                sentence = [
                    str(rng.choice(words)) if rng.random() < 0.5 else "".join(rng.choice(chars, rng.integers(1, 30)))
                    for _ in range(n)
                ]
                batch.append(sentence)
            batches.append(batch)
    return batches


def measure_tag_parity(
    model_path: Path,
    run: LoadedTagRun,
    variant: str,
    criteria: Criteria,
    data: TaggedSentences | None = None,
    batch_size: int = 64,
    seed: int = 0,
    threads: int = 1,
) -> TagParity:
    """Compare ``model_path`` on ORT CPU with the run's PyTorch model (see module docstring).

    Args:
        model_path: The exported graph.
        run: The run it came from.
        variant: Its variant name.
        criteria: The atol/rtol used for ``within_tolerance`` (``None`` atol: 1e-5 reported only).
        data: Labelled sentences (real data); ``None``: generated cases only.
        batch_size: Sentences per batch for the real data.
        seed: Seeds the generated cases.
        threads: ORT intra-op threads.
    """
    session = create_session(model_path, SessionConfig(providers="cpu", intra_op_threads=threads)).session
    max_chars = run.model_config.max_word_chars
    report = TagParity(variant)
    diffs: list[np.ndarray] = []
    prob_diffs: list[np.ndarray] = []
    agree = 0
    atol = criteria.atol if criteria.atol is not None else 1e-5
    rtol = criteria.rtol if criteria.rtol is not None else 1e-4
    inside = 0

    def compare(sentences: list[list[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        nonlocal agree, inside
        enc = encode(sentences, run.vocab, run.chars, max_chars)
        with torch.no_grad():
            ref = run.model(*(torch.from_numpy(a) for a in (enc.input_ids, enc.char_ids, enc.lengths))).numpy()
        feeds = {INPUT_IDS: enc.input_ids, CHAR_IDS: enc.char_ids, LENGTHS: enc.lengths}
        out = session.run([LOGITS], feeds)[0].astype(np.float32)
        refs, outs = [], []
        for b, n in enumerate(enc.lengths.tolist()):
            r, o = ref[b, :n], out[b, :n]
            diffs.append(np.abs(r - o).max(axis=1))
            prob_diffs.append(np.abs(softmax(r) - softmax(o)).max(axis=1))
            agree += int(np.sum(r.argmax(1) == o.argmax(1)))
            inside += int(np.sum(np.all(within(o, r, atol, rtol), axis=1)))
            refs.append(r)
            outs.append(o)
        report.sentences += len(sentences)
        return refs, outs

    for batch in _generated(run, seed):
        _, outs = compare(batch)
        report.cases += 1
        for sentence, inside_batch in zip(batch, outs, strict=True):
            enc = encode([sentence], run.vocab, run.chars, max_chars)
            alone = session.run([LOGITS], {INPUT_IDS: enc.input_ids, CHAR_IDS: enc.char_ids, LENGTHS: enc.lengths})
            gap = float(np.abs(alone[0][0].astype(np.float32) - inside_batch).max())
            report.padding_max_diff = max(report.padding_max_diff, gap)
    if data is not None:
        order = sorted(range(len(data)), key=lambda i: len(data.tokens[i]))
        hits = torch_hits = 0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            refs, outs = compare([data.tokens[i] for i in rows])
            for i, r, o in zip(rows, refs, outs, strict=True):
                gold = np.array(data.tags[i])
                labels = np.array(run.labels)
                hits += int(np.sum(labels[o.argmax(1)] == gold))
                torch_hits += int(np.sum(labels[r.argmax(1)] == gold))
        report.labelled_tokens = data.num_tokens
        report.accuracy = hits / max(data.num_tokens, 1)
        report.torch_accuracy = torch_hits / max(data.num_tokens, 1)
    all_diffs, all_probs = np.concatenate(diffs), np.concatenate(prob_diffs)
    report.tokens = int(all_diffs.size)
    report.max_abs_diff = float(all_diffs.max())
    report.max_prob_diff = float(all_probs.max())
    report.p99_prob_diff = float(np.quantile(all_probs, 0.99))
    report.tag_agreement = agree / max(report.tokens, 1)
    report.within_tolerance = inside / max(report.tokens, 1)
    return report


def judge(report: TagParity, criteria: Criteria) -> None:
    """Apply ``criteria`` to a measurement; record every failure in ``report.failures``.

    Raises:
        ParityError: Any criterion failed; the message lists them all.
    """
    failures = []
    if criteria.atol is not None and report.within_tolerance < 1.0:
        failures.append(
            f"logits differ beyond atol {criteria.atol} + rtol {criteria.rtol} at "
            f"{1 - report.within_tolerance:.2%} of positions (max {report.max_abs_diff:.2e})"
        )
    if criteria.atol is not None and report.padding_max_diff > PADDING_ATOL:
        failures.append(f"padding changes logits by {report.padding_max_diff:.2e} > {PADDING_ATOL}")
    if report.tag_agreement < criteria.min_label_agreement:
        failures.append(f"tag agreement {report.tag_agreement:.4f} < {criteria.min_label_agreement}")
    if criteria.max_prob_diff is not None and report.p99_prob_diff > criteria.max_prob_diff:
        failures.append(f"p99 |Δprob| {report.p99_prob_diff:.3f} > {criteria.max_prob_diff}")
    delta = report.accuracy_delta_points
    if delta is not None and criteria.atol is None and -delta > VARIANT_MAX_ACCURACY_DROP:
        failures.append(f"accuracy drops {-delta:.2f} points > {VARIANT_MAX_ACCURACY_DROP}")
    report.failures = failures
    if failures:
        raise ParityError(f"Tagger parity failed for {report.variant}: " + "; ".join(failures) + ".")
