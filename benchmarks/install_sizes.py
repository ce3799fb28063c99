"""Install size and cold start of each documented install line, each in a fresh virtual environment.

For every line: create a venv, ``pip install`` the line (torch==2.13.0 first where torch is pulled, as the README
says), then measure the site-packages size (MB, all files), ``pip check``, the distributions that landed, and the
cold start of a fresh process (median of 5): ``import lstm_onnx`` + load a bundle + predict one text, and
``lstm-onnx --help``.

    python benchmarks/install_sizes.py --bundle BUNDLE [--out benchmarks/results/install-sizes.json]

Needs network access to the package index (or a warm pip cache). Takes a few minutes per line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"
# (label, what the README tells users to run, whether torch is pinned first)
LINES = [
    ("base (no ONNX Runtime)", ".", False),
    ("[cpu]", ".[cpu]", False),
    ("[gpu]", ".[gpu]", False),
    ("[train,cpu]", ".[train,cpu]", True),
    ("[export,cpu]", ".[export,cpu]", True),
    ("[dev]", ".[dev]", True),
]
_PREDICT = (
    "import sys, lstm_onnx; m = lstm_onnx.load(sys.argv[1], providers='cpu'); "
    "print(m.predict(['A moving, beautifully acted film.'])[0].label)"
)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def _dir_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def _median_seconds(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(label: str, spec: str, torch_first: bool, bundle: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        _run([sys.executable, "-m", "venv", str(venv)])
        py = str(venv / "bin" / "python")
        pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if torch_first:
            _run([*pip, TORCH])
        _run([*pip, f"{REPO}{spec[1:]}" if spec.startswith(".") else spec])
        site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
        check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
        dists = json.loads(_run([py, "-m", "pip", "list", "--format", "json"]).stdout)
        names = sorted(d["name"].lower() for d in dists)
        tops = sorted(p.name for p in site.iterdir() if "lstm_onnx" in p.name)
        row: dict[str, object] = {
            "line": label,
            "command": f"pip install {'torch==2.13.0 && pip install ' if torch_first else ''}'{spec}'",
            "site_packages_mb": round(_dir_mb(site), 1),
            "distributions": len(names),
            "has": {n: n in names for n in ("torch", "spacy", "onnxruntime", "onnxruntime-gpu", "onnx")},
            "lstm_onnx_entries": tops,
            "pip_check": check.stdout.strip() or check.stderr.strip(),
            "pip_check_ok": check.returncode == 0,
        }
        script = str(venv / "bin" / "lstm-onnx")
        row["help_s"] = round(_median_seconds([script, "--help"]), 3)
        if row["has"]["onnxruntime"] or row["has"]["onnxruntime-gpu"]:  # type: ignore[index]
            row["load_predict_s"] = round(_median_seconds([py, "-c", _PREDICT, str(bundle)]), 3)
        else:
            done = subprocess.run([py, "-c", _PREDICT, str(bundle)], capture_output=True, text=True)
            row["load_predict_s"] = None
            row["without_ort"] = done.stderr.strip().splitlines()[-1] if done.stderr else done.stdout
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle directory to load in the cold start")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "install-sizes.json")
    parser.add_argument("--only", default=None, help="comma-separated labels to measure (default: all)")
    args = parser.parse_args()
    rows = []
    for label, spec, torch_first in LINES:
        if args.only and label not in args.only.split(","):
            continue
        print(f"measuring {label} ...", file=sys.stderr, flush=True)
        rows.append(measure(label, spec, torch_first, args.bundle.resolve()))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    result = {
        "command": "python benchmarks/install_sizes.py --bundle BUNDLE",
        "python": sys.version.split()[0],
        "platform": os.uname().sysname + " " + os.uname().machine,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
