"""Prove RuleTokenizer == spaCy on the whole IMDB archive, and compare speed, import time and memory.

Usage: python benchmarks/tokenizer_identity.py [--archive PATH] [--limit N] [--json OUT]

Every review (train, test, unsup: 100,000) is tokenized raw and after ``normalize`` by both engines;
any difference is a mismatch. Throughput is measured on one core on the normalised texts (what the runtime
tokenizes), each engine from a fresh instance so its cache starts cold. Import time and peak RSS come from
fresh subprocesses that import the engine and build it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lstm_onnx.runtime.tokenizer import normalize  # noqa: E402
from lstm_onnx.runtime.tokenizer_rules import RuleTokenizer, dump_spacy_rules, save_rules  # noqa: E402
from tests.runtime.test_tokenizer_rules import iter_imdb  # noqa: E402

_STARTUP = {
    "rule_tokenizer": (
        "from pathlib import Path; from lstm_onnx.runtime.tokenizer_rules import RuleTokenizer, load_rules; "
        "tok = RuleTokenizer(load_rules(Path({path!r}))); tok('Warm up, please.')"
    ),
    "spacy": "import spacy; tok = spacy.blank('en').tokenizer; tok('Warm up, please.')",
}
# Peak RSS from VmHWM: ru_maxrss survives exec on Linux and would report the parent's size.
_MEASURE = (
    "import time, sys; t0 = time.perf_counter(); {code}; "
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]; "
    "print(time.perf_counter() - t0, int(hwm) / 1024, 'torch' in sys.modules)"
)


def startup(code: str, runs: int = 5) -> dict[str, Any]:
    """Median import+build time (s) and peak RSS (MiB) of a fresh interpreter running ``code``."""
    times, rss, torch = [], [], False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE.format(code=code)], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout.split()
        times.append(float(out[0]))
        rss.append(float(out[1]))
        torch = out[2] == "True"
    times.sort()
    return {"seconds": times[len(times) // 2], "peak_rss_mib": max(rss), "imports_torch": torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=REPO.parent / "shared/data/imdb/aclImdb_v1.tar.gz")
    parser.add_argument("--limit", type=int, default=None, help="reviews per split (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    import spacy

    rules = dump_spacy_rules()
    spacy_tok = spacy.blank("en").tokenizer
    rule_tok = RuleTokenizer(rules)
    texts = list(iter_imdb(args.archive, args.limit))
    normalized = [normalize(t) for t in texts]

    mismatches, n_tokens, examples = 0, 0, []
    for text in (*texts, *normalized):
        ours = rule_tok(text)
        theirs = [t.text for t in spacy_tok(text)]
        n_tokens += len(theirs)
        if ours != theirs:
            mismatches += 1
            if len(examples) < 5:
                examples.append(text[:200])

    # Fresh instances so both caches start cold; one core (the process is single-threaded).
    fresh_spacy = spacy.blank("en").tokenizer
    engines = {
        "rule_tokenizer": RuleTokenizer(rules),
        "spacy": lambda t: [x.text for x in fresh_spacy(t)],
    }
    speed: dict[str, float] = {}
    for name, call in engines.items():
        t0 = time.perf_counter()
        for text in normalized:
            call(text)
        speed[name] = len(normalized) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.json"
        save_rules(rules, path)
        starts = {name: startup(code.format(path=str(path))) for name, code in _STARTUP.items()}

    result = {
        "spacy_version": spacy.__version__,
        "python": sys.version.split()[0],
        "texts": len(texts),
        "texts_compared": 2 * len(texts),
        "tokens_compared": n_tokens,
        "mismatches": mismatches,
        "mismatch_examples": examples,
        "reviews_per_s_one_core": {k: round(v, 1) for k, v in speed.items()},
        "startup": starts,
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
