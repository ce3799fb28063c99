"""Cold start and single-text latency of the runtime (no torch, no spaCy).

Usage: python benchmarks/startup.py BUNDLE [--runs 7] [--latency-runs 300] [--json OUT]

- cold start: a fresh interpreter imports ``runtime.predictor``, loads and verifies the bundle (checksums,
  session, IO contract) and predicts one text; wall time measured by the parent around the whole subprocess
  (interpreter start included), peak RSS from the child's ``VmHWM`` (``ru_maxrss`` survives exec on Linux and
  would report the parent). Also the same through the ``lstm-onnx predict`` console script.
- latency: in one process, a ~16-token text predicted repeatedly (after warm-up): median, p90, p99.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHORT_TEXT = "I really loved this movie, the acting was great but the plot was a bit too slow."

_COLD = """
import sys
from lstm_onnx.runtime.predictor import TextClassifier
model = TextClassifier.load({bundle!r}, providers={provider!r})
model.predict([{text!r}])
hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]
print(int(hwm) / 1024, 'torch' in sys.modules, 'spacy' in sys.modules, model.provider)
"""


def _median(values: list[float]) -> float:
    return statistics.median(values)


def cold_start(bundle: Path, provider: str, runs: int) -> dict[str, Any]:
    """Median wall time and max peak RSS of a fresh process that loads ``bundle`` and predicts once."""
    walls, rss = [], []
    out: list[str] = []
    for _ in range(runs):
        code = _COLD.format(bundle=str(bundle), provider=provider, text=SHORT_TEXT)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        out = done.stdout.split()
        rss.append(float(out[0]))
    return {
        "wall_s_median": round(_median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "peak_rss_mib": round(max(rss), 1),
        "imports_torch": out[1] == "True",
        "imports_spacy": out[2] == "True",
        "provider": out[3],
    }


def cli_start(bundle: Path, runs: int) -> dict[str, Any] | None:
    """Median wall time of ``lstm-onnx predict BUNDLE TEXT`` (None when the script is not installed)."""
    script = shutil.which("lstm-onnx")
    if script is None:
        return None
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([script, "predict", str(bundle), SHORT_TEXT], capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    return {"wall_s_median": round(_median(walls), 3)}


def latency(bundle: Path, provider: str, runs: int) -> dict[str, Any]:
    """Per-call latency of one short text, tokenization included (warm cache after warm-up)."""
    sys.path.insert(0, str(REPO))
    from lstm_onnx.runtime.predictor import TextClassifier

    model = TextClassifier.load(bundle, providers=provider)
    tokens = len(model.bundle.tokenizer.tokenize(SHORT_TEXT))
    for _ in range(20):
        model.predict([SHORT_TEXT])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.predict([SHORT_TEXT])
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {
        "tokens": tokens,
        "runs": runs,
        "ms_median": round(_median(times), 3),
        "ms_p90": round(times[int(0.9 * (runs - 1))], 3),
        "ms_p99": round(times[int(0.99 * (runs - 1))], 3),
        "intra_op_threads": model.bundle.session.config.intra_op_threads,
        "provider": model.provider,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--runs", type=int, default=7, help="cold starts to time")
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    import onnxruntime

    result = {
        "bundle": str(args.bundle),
        "model_bytes": (args.bundle / "model.onnx").stat().st_size,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "onnxruntime": onnxruntime.__version__,
        "cold_start": cold_start(args.bundle, args.provider, args.runs),
        "cli_predict": cli_start(args.bundle, max(3, args.runs // 2)),
        "latency_short_text": latency(args.bundle, args.provider, args.latency_runs),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
