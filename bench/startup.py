"""Start-up cost: a fresh interpreter imports, loads the model and predicts one text; wall time and peak RSS.

The runtime's process starts with ``sys.modules['torch'] = None``, before anything else is imported, so any
``import torch`` on its path raises ``ImportError``: the figure proves the runtime never needs torch. The
PyTorch process does what serving the training run directly takes: ``load_run`` + the trainer's tokenizer
(spaCy's, as in training) + one forward pass.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STARTUP_TEXT", "StartupSample", "runtime_code", "startup_runner", "torch_code"]

STARTUP_TEXT = "A wonderful, moving film; the acting was superb."

# Peak RSS from VmHWM: ru_maxrss survives exec on Linux and would report the parent's size.
_REPORT = (
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
    "print(time.perf_counter() - t0, int(hwm) / 1024, sys.modules.get('torch') is not None)\n"
)


def runtime_code(bundle: Path, threads: int) -> str:
    """Python source: block torch, import the runtime, load ``bundle`` on the CPU, predict one text, report."""
    return (
        "import sys\nsys.modules['torch'] = None\nimport time\nt0 = time.perf_counter()\n"
        "from lstm_onnx.runtime.predictor import TextClassifier\n"
        f"model = TextClassifier.load({str(bundle)!r}, providers='cpu', threads={threads})\n"
        f"model.predict([{STARTUP_TEXT!r}])\n" + _REPORT
    )


def torch_code(run_dir: Path, threads: int) -> str:
    """Python source: import torch and the trainer, ``load_run``, tokenize and predict one text, report."""
    return (
        "import sys, time\nt0 = time.perf_counter()\nimport torch\n"
        "from lstm_onnx.runtime.tokenizer import Tokenizer\nfrom lstm_onnx.trainer.run_dir import load_run\n"
        f"torch.set_num_threads({threads})\nrun = load_run({str(run_dir)!r})\n"
        f"ids = run.vocab.encode(Tokenizer(run.tokenizer_config).tokenize({STARTUP_TEXT!r}))\n"
        "with torch.inference_mode():\n"
        "    run.model(torch.tensor([ids]), torch.tensor([len(ids)])).softmax(-1)\n" + _REPORT
    )


@dataclass(frozen=True)
class StartupSample:
    """One fresh process.

    Attributes:
        in_process_s: From the first import to the prediction, measured inside the process.
        peak_rss_mb: Peak resident memory (VmHWM) of the process, MiB.
        torch_loaded: Whether torch ended up in ``sys.modules``.
    """

    in_process_s: float
    peak_rss_mb: float
    torch_loaded: bool


def startup_runner(code: str, samples: list[StartupSample]) -> Callable[[int], None]:
    """A contestant for ``timing.interleave``: each call runs ``code`` in a fresh ``python -c`` and appends its
    sample to ``samples`` (the caller's wall-clock time of the call is the process's whole life).

    Raises:
        subprocess.CalledProcessError: The process failed (its stderr is in the exception).
    """

    def run(_: int) -> None:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        seconds, rss, torch_loaded = done.stdout.split()[-3:]
        samples.append(StartupSample(float(seconds), float(rss), torch_loaded == "True"))

    return run
