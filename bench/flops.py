"""How much arithmetic the LSTM does per token, and this machine's practical float32 ceiling (numpy matmul).

Count (multiply-add = 2 FLOPs; gate non-linearities, embedding lookup, pooling and head left out — they are
O(H) per token against the O(H·(I+H)) matrix products)::

    FLOPs/token = Σ_layers  D · 2 · 4H · (I_l + H)      I_1 = E,  I_l = D·H for l > 1

4H rows of gates, each a dot product with the input (I_l) and the previous hidden state (H), per direction D.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["FLOPS_FORMULA", "Ceiling", "flops_per_token", "measure_matmul"]

FLOPS_FORMULA = "sum over layers of D * 2 * 4H * (I_l + H); I_1 = E, I_l = D*H after (gate matmuls only)"

# Runs in a fresh interpreter so the BLAS thread count can be fixed before numpy loads (it reads the variables
# once, at import); prints the median seconds of `runs` timed products after 3 warm-ups.
_MATMUL = """
import json, sys, time
import numpy as np
m, k, n, runs = (int(x) for x in sys.argv[1:5])
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k), dtype=np.float32)
b = rng.standard_normal((k, n), dtype=np.float32)
for _ in range(3):
    a @ b
times = []
for _ in range(runs):
    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
print(json.dumps(sorted(times)[len(times) // 2]))
"""
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def flops_per_token(embedding_dim: int, hidden_size: int, num_layers: int, bidirectional: bool) -> int:
    """LSTM FLOPs per token (see the module docstring for the formula).

    Args:
        embedding_dim: E.
        hidden_size: H.
        num_layers: Stacked layers.
        bidirectional: D = 2 when true.
    """
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        inputs = embedding_dim if layer == 0 else directions * hidden_size
        total += directions * 2 * 4 * hidden_size * (inputs + hidden_size)
    return total


@dataclass(frozen=True)
class Ceiling:
    """A measured float32 matmul rate.

    Attributes:
        shape: (M, K, N) of ``(M, K) @ (K, N)``.
        threads: BLAS threads.
        seconds: Median time of one product.
        gflops: ``2·M·K·N / seconds / 1e9``.
    """

    shape: tuple[int, int, int]
    threads: int
    seconds: float
    gflops: float


def measure_matmul(shape: tuple[int, int, int], threads: int, runs: int = 30) -> Ceiling:
    """Median float32 ``(M, K) @ (K, N)`` rate with numpy, on ``threads`` BLAS threads, in a fresh interpreter.

    Raises:
        subprocess.CalledProcessError: The measuring interpreter failed.
    """
    m, k, n = shape
    env = {**os.environ, **dict.fromkeys(_THREAD_VARIABLES, str(threads))}
    done = subprocess.run(
        [sys.executable, "-c", _MATMUL, str(m), str(k), str(n), str(runs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = float(json.loads(done.stdout))
    return Ceiling(shape, threads, seconds, 2.0 * m * k * n / seconds / 1e9)
