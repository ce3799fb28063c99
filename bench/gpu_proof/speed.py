"""The proof's timing stages.

- ``speed_stage``: ONNX Runtime on the device (``ModelSession``: IO binding on CUDA), fp32 and fp16, against
  PyTorch on the device, eager and ``torch.compile``d, on the same batches of real reviews, interleaved in one
  run (``bench.timing.interleave``). Every contestant takes host arrays and returns host logits, so each pays for
  its copies to and from the GPU, as a service does.
- ``end_to_end_stage``: reviews in, probabilities out, with the tokenizer on one core (``TextClassifier``) and
  spread over every core (``EncodePool`` feeding one session), against tokenization alone and the model alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.bench.backends import Contestant, feed
from lstm_onnx.bench.cases import Case, real_case
from lstm_onnx.bench.gpu_proof.stages import Deadline
from lstm_onnx.bench.gpu_proof.texts import EncodePool
from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.bench.torch_peers import CompiledTorchBackend
from lstm_onnx.exporter.backends import TorchModuleBackend
from lstm_onnx.runtime.batching import length_buckets
from lstm_onnx.runtime.bundle import Bundle
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS
from lstm_onnx.runtime.predictor import DEFAULT_CHUNK_SIZE, TextClassifier, softmax
from lstm_onnx.runtime.tokenizer import batch_encode

__all__ = ["end_to_end_stage", "infer", "speed_stage", "torch_contestants"]

# Untimed rounds before timing: CUDA kernels, cuDNN plans and ORT's memory arena settle in the first calls.
WARMUP = 3
# Reviews batched together end to end, on both paths: what the runtime's iter_predict reads ahead.
GROUP = DEFAULT_CHUNK_SIZE


def speed_stage(
    deadline: Deadline, contestants: Sequence[Contestant], ids: list[list[int]], batch_sizes: Sequence[int], runs: int
) -> dict[str, Any]:
    """Time every contestant on the same length-bucketed batches of real reviews, interleaved, per batch size.

    Args:
        deadline: A batch size that would start after it is skipped (and said so).
        contestants: ORT and PyTorch backends (``run(feed) -> [logits]``), already built (compiled) and on the device.
        ids: Encoded real reviews, in random order.
        batch_sizes: B values.
        runs: Timed repetitions per contestant and batch size.

    Returns:
        Per batch size: texts/s, tokens/s and latency percentiles per contestant, and ratios against PyTorch eager
        and compiled; the compile times.
    """
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    names = [c.name for c in contestants]
    for batch_size in batch_sizes:
        if deadline.expired():
            skipped.append(f"batch {batch_size}: the stage's budget was spent")
            continue
        if len(ids) < batch_size:
            skipped.append(f"batch {batch_size}: only {len(ids)} reviews")
            continue
        case = real_case(ids, batch_size, runs)
        records += _time_case(case, contestants, runs)
    compiled = {
        c.name: {"compile_s": c.compile_s, "recompiles": c.recompiles()}
        for c in contestants
        if isinstance(c, CompiledTorchBackend)
    }
    return {
        "contestants": names,
        "providers": {c.name: c.provider for c in contestants},
        "records": records,
        "skipped": skipped,
        "compiled": compiled,
        "runs": runs,
        "warmup": WARMUP,
    }


def _time_case(case: Case, contestants: Sequence[Contestant], runs: int) -> list[dict[str, Any]]:
    feeds = [feed(ids, lengths) for ids, lengths in case.batches]
    calls = {c.name: (lambda rep, c=c: c.run(feeds[rep % len(feeds)])) for c in contestants}
    samples = interleave(calls, runs=runs, warmup=WARMUP, idle_s=0.0)
    texts = sum(len(case.batch(r)[1]) for r in range(runs))
    tokens = sum(int(case.batch(r)[1].sum()) for r in range(runs))
    records = []
    for contestant in contestants:
        total = sum(samples[contestant.name])
        records.append(
            {
                "backend": contestant.name,
                "batch_size": case.batch_size,
                "texts_per_s": texts / total,
                "tokens_per_s": tokens / total,
                **asdict(summarize(samples[contestant.name])),
            }
        )
    for peer in ("eager", "compiled"):
        rate = next(
            (r["texts_per_s"] for r in records if r["backend"].startswith("torch") and r["backend"].endswith(peer)),
            None,
        )
        for record in records:
            record[f"ratio_vs_torch_{peer}"] = record["texts_per_s"] / rate if rate else None
    return records


def infer(bundle: Bundle, ids: Sequence[Sequence[int]], batch_size: int, max_tokens: int) -> NDArray[np.float32]:
    """Probabilities (N, C) for encoded texts, batched as the predictor batches (``length_buckets``)."""
    probs = np.empty((len(ids), len(bundle.labels)), dtype=np.float32)
    for rows in length_buckets([len(seq) for seq in ids], batch_size, max_tokens):
        batch, lengths = batch_encode([ids[i] for i in rows])
        probs[rows] = softmax(bundle.session.run(batch, lengths))
    return probs


def end_to_end_stage(
    deadline: Deadline, bundle: Bundle, texts: Sequence[str], workers: int, batch_size: int, max_tokens: int
) -> dict[str, Any]:
    """Reviews/s end to end, tokenizing on one core and on ``workers`` processes, plus each part alone.

    Both paths batch ``GROUP`` reviews at a time (sorted by length, cut at ``batch_size`` rows and ``max_tokens``
    padded tokens). The parallel path tokenizes chunks of reviews in worker processes while this process batches
    them and runs the session, so the GPU works while the CPUs tokenize. Its probabilities are compared with
    ``TextClassifier``'s.

    Returns:
        Rates (reviews/s) for: ``serial`` (``TextClassifier.predict_proba``: tokenizer on this core),
        ``parallel`` (``workers`` tokenizer processes feeding the session), ``tokenize_parallel`` (the workers
        alone) and ``model_only`` (the session on encoded reviews); the largest |Δprob| between the paths.
    """
    model = TextClassifier(bundle, batch_size=batch_size, max_batch_tokens=max_tokens)
    groups = [list(texts[i : i + GROUP]) for i in range(0, len(texts), GROUP)]
    started = time.perf_counter()
    serial = np.concatenate([model.predict_proba(group) for group in groups])
    serial_s = time.perf_counter() - started
    record: dict[str, Any] = {
        "reviews": len(texts),
        "workers": workers,
        "batch_size": batch_size,
        "max_batch_tokens": max_tokens,
    }
    record["serial"] = {"seconds": serial_s, "reviews_per_s": len(texts) / serial_s}
    if deadline.expired():
        return {**record, "skipped": "the budget was spent after the serial pass"}
    with EncodePool(bundle.tokenizer, bundle.vocab, workers) as pool:
        record["pool_start_s"] = pool.start_s
        started = time.perf_counter()
        parts, pending = [], []
        for chunk in pool.iter_encode(texts):  # the workers run ahead while the session runs
            pending += chunk
            if len(pending) >= GROUP:
                parts.append(infer(bundle, pending[:GROUP], batch_size, max_tokens))
                pending = pending[GROUP:]
        if pending:
            parts.append(infer(bundle, pending, batch_size, max_tokens))
        parallel_s = time.perf_counter() - started
        started = time.perf_counter()
        encoded = pool.encode(texts)
        tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    infer(bundle, encoded, batch_size, max_tokens)
    model_s = time.perf_counter() - started
    parallel = np.concatenate(parts) if parts else np.empty((0, len(bundle.labels)), np.float32)
    record["parallel"] = {"seconds": parallel_s, "reviews_per_s": len(texts) / parallel_s}
    record["tokenize_parallel"] = {"seconds": tokenize_s, "reviews_per_s": len(texts) / tokenize_s}
    record["model_only"] = {"seconds": model_s, "reviews_per_s": len(texts) / model_s}
    record["parallel_vs_serial"] = serial_s / parallel_s
    record["max_prob_diff_parallel_vs_serial"] = float(np.abs(parallel - serial).max()) if len(texts) else 0.0
    record["labels_identical"] = bool((parallel.argmax(axis=1) == serial.argmax(axis=1)).all())
    if not record["labels_identical"]:
        record.update(passed=False, reason="the parallel path's labels differ from TextClassifier's")
    return record


def torch_contestants(model: Any, device: str, compile_backend: str) -> tuple[list[Contestant], str]:
    """PyTorch on ``device``: the trained model in eager mode (packed sequences, as trained) and ``torch.compile`` on
    its masked twin (``bench.torch_peers``), compiled for every shape class before timing.

    Args:
        model: The run's ``BiLSTMClassifier``, eval mode, on ``device``.
        device: ``"cuda"`` or ``"cpu"``.
        compile_backend: ``torch.compile``'s backend.

    Returns:
        The contestants, and why the compiled one is missing (``""`` when it is there): a compiler failure on the
        GPU must not cost the other figures of a one-off run, so it is reported instead of raised.
    """
    eager = TorchModuleBackend(model, (INPUT_IDS, LENGTHS), name=f"torch-{device}-eager", device=device)
    name = f"torch-{device}-compiled"
    try:
        compiled = CompiledTorchBackend(model, name=name, device=device, backend=compile_backend)
    except Exception as err:  # torch.compile raises many types (BackendCompilerFailed, Unsupported, ...)
        return [eager], f"{name}: {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return [eager, compiled], ""
