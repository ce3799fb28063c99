"""The benchmark's PyTorch peers: packed eager, the masked twin eager and torch.compile on the masked twin agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_onnx.bench.torch_peers import TORCH_PEERS, torch_peer
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

torch = pytest.importorskip("torch")


def _padded_batches() -> list[dict[str, np.ndarray]]:
    """Right-padded batches of mixed lengths, including the shapes torch.compile specializes (B=1, T=1)."""
    rng = np.random.default_rng(0)
    feeds = []
    for batch, steps in ((1, 1), (1, 9), (4, 12), (7, 5)):
        lengths = rng.integers(1, steps + 1, size=batch).astype(np.int64)
        lengths[0] = steps
        ids = rng.integers(2, 20, size=(batch, steps)).astype(np.int64)
        ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
        feeds.append({INPUT_IDS: ids, LENGTHS: lengths})
    return feeds


def test_masked_eager_matches_packed_on_padded_batches(tiny_run_dir: Path) -> None:
    packed, masked = torch_peer("torch", tiny_run_dir, 1), torch_peer("torch-masked", tiny_run_dir, 1)
    assert masked.name == "torch-masked"
    for feed in _padded_batches():
        want, got = packed.run(feed)[0], masked.run(feed)[0]
        assert got.shape == want.shape == (len(feed[LENGTHS]), 2)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_unknown_peer_is_refused(tiny_run_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown PyTorch peer 'torch-jit'"):
        torch_peer("torch-jit", tiny_run_dir, 1)


@pytest.mark.slow
def test_compiled_masked_twin_matches_packed_without_recompiling(tiny_run_dir: Path) -> None:
    assert TORCH_PEERS[-1] == "torch-compiled"
    packed, compiled = torch_peer("torch", tiny_run_dir, 1), torch_peer("torch-compiled", tiny_run_dir, 1)
    assert compiled.compile_s > 0 and compiled.graphs >= 1  # type: ignore[attr-defined]
    for feed in _padded_batches():
        np.testing.assert_allclose(compiled.run(feed)[0], packed.run(feed)[0], atol=1e-5, rtol=0)
    # Timing never pays for compilation: warm-up compiled every shape class these batches fall in.
    assert compiled.recompiles() == 0  # type: ignore[attr-defined]
