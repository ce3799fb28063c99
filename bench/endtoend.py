"""End to end: text in, probabilities out through ``runtime.predictor.TextClassifier``, against the model alone on
the same batches, the share of time each stage takes (tokenization, batching, inference), and the PyTorch peers
doing the same work (the bundle's tokenizer, the same length buckets, their model, softmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from lstm_onnx.bench.backends import Contestant, feed
from lstm_onnx.bench.cases import bucket_encode, encode_texts
from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.runtime.bundle import Bundle
from lstm_onnx.runtime.predictor import TextClassifier, softmax

__all__ = ["measure_end_to_end"]


def measure_end_to_end(
    bundle: Bundle,
    texts: Sequence[str],
    batch_size: int,
    runs: int,
    warmup: int,
    idle_s: float,
    peers: Sequence[Contestant] = (),
) -> list[dict[str, Any]]:
    """Interleave four contestants on the same chunk of ``2 × batch_size`` reviews per repetition:
    ``TextClassifier.predict_proba`` (end to end), the session alone on the pre-made batches (model only),
    tokenization + ids alone, and sorting + padding alone.

    Each of ``peers`` (PyTorch backends) is interleaved too, doing the whole path itself: tokenize with the
    bundle's tokenizer, cut the same length buckets (the predictor's batch size and padded-token cap), run, softmax.

    Returns:
        One ``end_to_end`` record for backend ``ort-cpu``: both throughputs, their ratio, each stage's share of the
        sum of the stage medians, and the end-to-end latency percentiles per chunk; then one per peer (throughput
        and latency percentiles).
    """
    if not texts:
        raise ValueError("measure_end_to_end needs at least one text.")
    chunk = min(2 * batch_size, len(texts))
    chunks = [list(texts[i : i + chunk]) for i in range(0, len(texts) - chunk + 1, chunk)][:runs]
    model = TextClassifier(bundle, batch_size=batch_size)
    session = bundle.session
    encoded = [encode_texts(c, bundle.tokenizer, bundle.vocab) for c in chunks]
    cap = model.max_batch_tokens  # every contestant cuts the predictor's own batches
    padded = [bucket_encode(ids, batch_size, cap) for ids in encoded]

    def end_to_end(rep: int) -> None:
        model.predict_proba(chunks[rep % len(chunks)])

    def model_only(rep: int) -> None:
        for ids, lengths in padded[rep % len(chunks)]:
            session.run(ids, lengths)

    def tokenize(rep: int) -> None:
        encode_texts(chunks[rep % len(chunks)], bundle.tokenizer, bundle.vocab)

    def batching(rep: int) -> None:
        bucket_encode(encoded[rep % len(chunks)], batch_size, cap)

    def peer_end_to_end(peer: Contestant) -> Any:
        def run(rep: int) -> None:
            encoded_chunk = encode_texts(chunks[rep % len(chunks)], bundle.tokenizer, bundle.vocab)
            for ids, lengths in bucket_encode(encoded_chunk, batch_size, cap):
                softmax(peer.run(feed(ids, lengths))[0])

        return run

    contestants = {"end_to_end": end_to_end, "model_only": model_only, "tokenize": tokenize, "batching": batching}
    contestants.update({f"peer:{peer.name}": peer_end_to_end(peer) for peer in peers})
    samples = interleave(contestants, runs=runs, warmup=warmup, idle_s=idle_s)
    done = sum(len(chunks[r % len(chunks)]) for r in range(runs))
    e2e_rate = done / sum(samples["end_to_end"])
    model_rate = done / sum(samples["model_only"])
    medians = {name: summarize(samples[name]).p50_ms for name in ("tokenize", "batching", "model_only")}
    total = sum(medians.values())
    return [
        {
            "kind": "end_to_end",
            "backend": "ort-cpu",
            "batch_size": batch_size,
            "seq_len": "real",
            "texts_per_chunk": chunk,
            "texts_per_s": e2e_rate,
            "model_texts_per_s": model_rate,
            "e2e_vs_model": e2e_rate / model_rate,
            "share_tokenize": medians["tokenize"] / total,
            "share_batching": medians["batching"] / total,
            "share_inference": medians["model_only"] / total,
            **asdict(summarize(samples["end_to_end"])),
        }
    ] + [
        {
            "kind": "end_to_end",
            "backend": peer.name,
            "batch_size": batch_size,
            "seq_len": "real",
            "texts_per_chunk": chunk,
            "texts_per_s": done / sum(samples[f"peer:{peer.name}"]),
            **asdict(summarize(samples[f"peer:{peer.name}"])),
        }
        for peer in peers
    ]
