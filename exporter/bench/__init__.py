"""``lstm-onnx bench``: PyTorch eager against ONNX Runtime (fp32, optimized, int8; CUDA where present).

Model-only throughput and latency on real and fixed-length batches, end to end through the predictor, start-up
in fresh processes, and the LSTM's FLOP rate against numpy's matmul. Torch loads only for ``--against``.
"""

from __future__ import annotations

from lstm_onnx.exporter.bench.suite import BenchConfig, bench

__all__ = ["BenchConfig", "bench"]
