"""LSTM kernel against LSTM kernel: ORT's CPU LSTM node against the oneDNN RNN primitive the PyTorch peers run.

Usage: python benchmarks/lstm_kernels.py [--run RUN --bundle BUNDLE] [--label NAME] [--shapes 8x256,32x256,32x64]
[--runs 15] [--threads 1] [--json OUT]

Why: against ``torch.compile`` on the masked twin, ORT fp32 trails at batch 8-32 on 1 thread. This script says where.
The masked twin calls ``torch.lstm`` on dense tensors, which PyTorch's CPU build dispatches to oneDNN's fused RNN
primitive (``aten::mkldnn_rnn_layer``); the packed model cannot use it. For each shape (random ids, every row the
full length, so every engine computes the same thing), interleaved: ORT's default session (the bundle, graph
optimization ``all``), the masked twin in eager mode, ``torch.compile`` on it and, when installed, OpenVINO (also
oneDNN; correct here only because no row is padded: its CPU plugin ignores ``sequence_lens``). One profile of each
(outside the timing) splits ORT's time into its LSTM nodes and the rest (ORT's profiler) and the eager twin's into
``aten::mkldnn_rnn_layer`` and the rest (``torch.profiler``), so the LSTM kernels are compared alone:
``kernel ms = p50 x kernel share``, and GFLOP/s over the gate matrix products (``bench.flops``).

Defaults: the benchmark model of ``benchmarks/peers.py`` in ``/tmp/lstm-onnx-peers`` (built there if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from lstm_onnx.bench.flops import flops_per_token
from lstm_onnx.bench.timing import interleave, summarize
from lstm_onnx.bench.torch_peers import CompiledTorchBackend, masked_twin
from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from profile_ops import op_micros  # noqa: E402 - sibling scripts, found through the line above
from session_levers import cpu_session  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz"


def _ort_lstm_share(model: Path, threads: int, feed: dict[str, np.ndarray]) -> float:
    """Share of ORT's kernel time spent in LSTM nodes (ORT's own profiler, 3 runs after warm-up)."""
    per_op = op_micros(model, feed, runs=3, threads=threads)
    return sum(v for k, v in per_op.items() if "LSTM" in k) / sum(per_op.values())


def _torch_rnn_share(twin: Any, ids: Any, lengths: Any) -> float:
    """Share of the eager twin's CPU time spent in ``aten::mkldnn_rnn_layer`` (``torch.profiler``, 3 runs)."""
    import torch

    with torch.inference_mode(), torch.profiler.profile() as prof:
        for _ in range(3):
            twin(ids, lengths)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    return float(self_us.get("aten::mkldnn_rnn_layer", 0.0)) / float(sum(self_us.values()))


def main() -> None:
    """Time, profile, print and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="Training run directory (default: the peers' 2x256 model).")
    parser.add_argument("--bundle", type=Path, help="Its fp32 bundle (with --run).")
    parser.add_argument("--label", default="2x256-e100")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="IMDB, only to build the default model.")
    parser.add_argument("--shapes", default="8x256,32x256,32x64", help="Comma-separated BxT.")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from lstm_onnx.trainer.run_dir import load_run

    if args.run is None:
        from bench_model import make_bench_bundles

        run_dir, bundles = make_bench_bundles(args.data, Path("/tmp/lstm-onnx-peers"), embedding_dim=100)
        model_path = bundles["fp32"] / "model.onnx"
    else:
        run_dir, model_path = args.run, args.bundle / "model.onnx"
    torch.set_num_threads(args.threads)
    loaded = load_run(run_dir)
    model = loaded.model.eval()
    config = model.config
    per_token = flops_per_token(config.embedding_dim, config.hidden_size, config.num_layers, config.bidirectional)
    twin = masked_twin(model)
    compiled = CompiledTorchBackend(model)
    session = cpu_session(model_path, args.threads)
    openvino: Any = None
    try:
        import openvino as ov

        openvino = (
            ov.Core()
            .compile_model(
                str(model_path), "CPU", {"INFERENCE_NUM_THREADS": args.threads, "INFERENCE_PRECISION_HINT": "f32"}
            )
            .create_infer_request()
        )
    except ImportError:
        pass

    rng = np.random.default_rng(0)
    rows: dict[str, Any] = {}
    for shape in args.shapes.split(","):
        batch, steps = (int(x) for x in shape.lower().split("x"))
        ids = rng.integers(2, config.vocab_size, size=(batch, steps), dtype=np.int64)
        feed = {INPUT_IDS: ids, LENGTHS: np.full(batch, steps, dtype=np.int64)}
        t_ids, t_lengths = torch.from_numpy(ids), torch.from_numpy(feed[LENGTHS])

        def eager(_: int, t_ids: Any = t_ids, t_lengths: Any = t_lengths) -> Any:
            with torch.inference_mode():
                return twin(t_ids, t_lengths)

        contestants = {
            "ort": lambda _, feed=feed: session.run(None, feed),
            "torch-masked": eager,
            "torch-compiled": lambda _, feed=feed: compiled.run(feed),
        }
        if openvino is not None:
            contestants["openvino"] = lambda _, feed=feed: openvino.infer(feed)
        reference = session.run(None, feed)[0]
        diffs = {
            "torch-masked": float(np.abs(eager(0).numpy() - reference).max()),
            "torch-compiled": float(np.abs(compiled.run(feed)[0] - reference).max()),
        }
        if openvino is not None:
            diffs["openvino"] = float(np.abs(openvino.infer(feed)[0] - reference).max())
        samples = interleave(contestants, runs=args.runs)
        p50 = {name: summarize(s).p50_ms for name, s in samples.items()}
        ort_share = _ort_lstm_share(model_path, args.threads, feed)
        rnn_share = _torch_rnn_share(twin, t_ids, t_lengths)
        gflop = per_token * batch * steps / 1e9
        kernel_ms = {
            "ort LSTM nodes": p50["ort"] * ort_share,
            "oneDNN mkldnn_rnn_layer": p50["torch-masked"] * rnn_share,
        }
        rows[f"B={batch} T={steps}"] = {
            "p50_ms": p50,
            "time_vs_ort": {name: value / p50["ort"] for name, value in p50.items()},
            "max_abs_diff_vs_ort": diffs,
            "ort_lstm_share": ort_share,
            "torch_masked_rnn_share": rnn_share,
            "lstm_kernel_ms": kernel_ms,
            "lstm_kernel_gflops": {name: gflop / (ms / 1e3) for name, ms in kernel_ms.items()},
            "ort_kernel_time_vs_onednn": kernel_ms["ort LSTM nodes"] / kernel_ms["oneDNN mkldnn_rnn_layer"],
        }
        print(
            f"B={batch:3d} T={steps:4d}  "
            + "  ".join(f"{name} {ms:7.1f} ms" for name, ms in p50.items())
            + f"  | LSTM kernels: ORT {kernel_ms['ort LSTM nodes']:.1f} ms ({ort_share:.0%}), oneDNN "
            f"{kernel_ms['oneDNN mkldnn_rnn_layer']:.1f} ms ({rnn_share:.0%}), ORT/oneDNN "
            f"{rows[f'B={batch} T={steps}']['ort_kernel_time_vs_onednn']:.2f}"
        )
    result = {
        "command": shlex.join(["python", *sys.argv]),
        "label": args.label,
        "threads": args.threads,
        "runs": args.runs,
        "versions": {"onnxruntime": ort.__version__, "torch": torch.__version__},
        "load_average_after": os.getloadavg(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "compile_s": compiled.compile_s,
        "recompiles": compiled.recompiles(),
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
