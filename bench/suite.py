"""``bench(config)``: every backend, interleaved, on every case; end to end; start-up; FLOP rate. Returns records.

A record is a JSON-able dict with ``kind`` (``model``, ``end_to_end``, ``startup``, ``ceiling``, ``skipped``,
``environment``) and ``backend``; ``model`` records carry ``batch_size``, ``seq_len`` (int or ``"real"``),
``texts_per_s``, ``tokens_per_s``, ``mean_ms``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``gflops`` and, for each PyTorch
peer that ran, a throughput ratio against it: ``ratio_vs_torch`` (packed eager), ``ratio_vs_torch_masked`` (the masked
twin, eager) and ``ratio_vs_torch_compiled`` (``torch.compile`` on the masked twin, whose records also carry
``compile_s``, excluded from timing, and ``recompiles`` during timing, 0 when no figure paid for compilation).
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from lstm_onnx.bench.backends import Contestant, Skipped, feed, torch_backend
from lstm_onnx.bench.cases import Case, encode_texts, fixed_case, real_case
from lstm_onnx.bench.endtoend import measure_end_to_end
from lstm_onnx.bench.flops import FLOPS_FORMULA, flops_per_token, measure_matmul
from lstm_onnx.bench.startup import StartupSample, runtime_code, startup_runner, torch_code
from lstm_onnx.bench.timing import MIN_RUNS, interleave, summarize
from lstm_onnx.bench.torch_peers import TORCH_PEERS, CompiledTorchBackend, torch_peer
from lstm_onnx.exporter.backends import OrtBackend
from lstm_onnx.runtime.bundle import Bundle, load_bundle
from lstm_onnx.runtime.contract import MODEL_FILE
from lstm_onnx.runtime.datasets import read_dataset, stratified_sample
from lstm_onnx.runtime.session import SessionConfig

__all__ = ["BenchConfig", "Progress", "bench", "with_ratios"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark.

    Attributes:
        bundle: fp32 bundle directory.
        against: Training run directory for the PyTorch backends (``None``: no torch, no ratios).
        data: Labelled data for real reviews (test split) and the end-to-end figure (``None``: fixed lengths only).
        text_field: CSV column / JSON key of the text in ``data`` (``read_dataset``'s default when ``None``).
        label_field: CSV column / JSON key of the label in ``data`` (``read_dataset``'s default when ``None``).
        batch_sizes: B values.
        seq_lens: Fixed T values (besides the real length mix).
        runs: Timed repetitions per figure (>= 30).
        warmup: Untimed repetitions first.
        torch_peers: Which PyTorch CPU peers run with ``against`` (``TORCH_PEERS``: packed eager, masked twin eager,
            ``torch.compile`` on the masked twin).
        threads: Intra-op threads for every backend (ORT and torch alike).
        idle_s: Idle gap before each timed call.
        optimized: Model file of the ORT-optimized variant (``None``: made from the fp32 model in a temp dir).
        int8: Model file of the int8 variant (``None``: made likewise).
        end_to_end: Measure text → probabilities through ``TextClassifier`` (needs ``data``).
        end_to_end_batch: Batch size of the end-to-end figure.
        startup: Measure start-up in fresh processes.
        seed: Sampling and random ids.
    """

    bundle: Path
    against: Path | None = None
    data: Path | None = None
    text_field: str | None = None
    label_field: str | None = None
    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    seq_lens: tuple[int, ...] = (16, 256)
    runs: int = MIN_RUNS
    torch_peers: tuple[str, ...] = TORCH_PEERS
    warmup: int = 2
    threads: int = 1
    idle_s: float = 0.05
    optimized: Path | None = None
    int8: Path | None = None
    end_to_end: bool = True
    end_to_end_batch: int = 32
    startup: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.runs < MIN_RUNS:
            raise ValueError(f"runs must be >= {MIN_RUNS} (fewer cannot give a stable p99), got {self.runs}.")
        if not self.batch_sizes or min(self.batch_sizes) < 1 or (self.seq_lens and min(self.seq_lens) < 1):
            raise ValueError(f"batch sizes and lengths must be >= 1, got {self.batch_sizes}, {self.seq_lens}.")
        unknown = set(self.torch_peers) - set(TORCH_PEERS)
        if unknown:
            raise ValueError(f"unknown PyTorch peers {sorted(unknown)}; expected some of {', '.join(TORCH_PEERS)}.")
        if self.threads < 1 or self.warmup < 0 or self.idle_s < 0:
            raise ValueError(
                f"threads >= 1, warmup >= 0, idle_s >= 0 expected, got {self.threads}, {self.warmup}, {self.idle_s}."
            )


def _variant(given: Path | None, kind: str, fp32: Path, work: Path) -> Path:
    if given is not None:
        return given
    from lstm_onnx.exporter.variants import Variant, make_variant

    path = work / f"model-{kind}.onnx"
    make_variant(Variant(kind), fp32, path)
    return path


def _backends(config: BenchConfig, work: Path, progress: Progress) -> tuple[list[Contestant], list[Skipped]]:
    fp32 = config.bundle / MODEL_FILE
    cpu = SessionConfig(providers="cpu", intra_op_threads=config.threads, allow_spinning=False)
    progress("building the optimized and int8 models" if not (config.optimized and config.int8) else "loading models")
    backends: list[Contestant] = []
    skipped: list[Skipped] = []
    if config.against is not None:
        for name in config.torch_peers:
            progress(f"building {name}" + (" (compiling every shape class first)" if name == "torch-compiled" else ""))
            backends.append(torch_peer(name, config.against, config.threads))
        made = torch_backend("torch-cuda", config.against, config.threads, "cuda")
        if isinstance(made, Skipped):
            skipped.append(made)
        else:
            backends.append(made)
    else:
        skipped += [Skipped(name, "no --against run directory") for name in (*TORCH_PEERS, "torch-cuda")]
    backends.append(OrtBackend("ort-cpu", fp32, cpu))
    backends.append(OrtBackend("ort-cpu-opt", _variant(config.optimized, "optimized", fp32, work), cpu))
    int8 = _variant(config.int8, "int8", fp32, work)
    backends.append(OrtBackend("ort-cpu-int8", int8, cpu))
    if config.threads > 1:
        # The runtime's own way to use several threads (runtime.session): one thread per call, and batches of
        # 2+ rows and 512+ padded tokens cut into `threads` parts run concurrently; smaller calls run whole.
        parts = SessionConfig(providers="cpu", intra_op_threads=1, batch_threads=config.threads, allow_spinning=False)
        backends.append(OrtBackend("ort-cpu-parts", fp32, parts, batch_major=True))
        backends.append(OrtBackend("ort-cpu-int8-parts", int8, parts, batch_major=True))
    gpu = SessionConfig(providers="cuda", intra_op_threads=config.threads)
    cuda = OrtBackend("ort-cuda", fp32, gpu)
    usable, reason = cuda.available()
    if usable:
        backends.append(cuda)
        backends.append(OrtBackend("ort-cuda-fp16", _variant(None, "fp16", fp32, work), gpu))
    else:
        skipped += [Skipped(name, reason) for name in ("ort-cuda", "ort-cuda-fp16")]
    for backend in backends:
        if isinstance(backend, OrtBackend):
            backend.session  # noqa: B018 - build every session now, as before timing starts
    return backends, skipped


def _cases(config: BenchConfig, bundle: Bundle, progress: Progress) -> tuple[list[Case], list[str]]:
    """Real-review cases first (when there is data), then fixed lengths; and the sampled review texts."""
    cases = [fixed_case(b, t, len(bundle.vocab), config.seed) for t in config.seq_lens for b in config.batch_sizes]
    if config.data is None:
        return cases, []
    data = read_dataset(config.data, split="test", text_field=config.text_field, label_field=config.label_field)
    wanted = max(max(config.batch_sizes) * config.runs, config.end_to_end_batch * 2 * config.runs)
    sample = stratified_sample(data, min(wanted, len(data)), config.seed)
    progress(f"tokenizing {len(sample)} reviews")
    ids = encode_texts(sample.texts, bundle.tokenizer, bundle.vocab)
    real = [real_case(ids, b, config.runs, config.seed) for b in config.batch_sizes]
    return real + cases, list(sample.texts)


def _time_case(case: Case, backends: Sequence[Contestant], config: BenchConfig, flops: int) -> list[dict[str, Any]]:
    feeds = [feed(ids, lengths) for ids, lengths in case.batches]
    contestants = {b.name: (lambda rep, b=b: b.run(feeds[rep % len(feeds)])) for b in backends}
    samples = interleave(contestants, runs=config.runs, warmup=config.warmup, idle_s=config.idle_s)
    texts = sum(len(case.batch(r)[1]) for r in range(config.runs))
    tokens = sum(int(case.batch(r)[1].sum()) for r in range(config.runs))
    records = []
    for backend in backends:
        total = sum(samples[backend.name])
        stats = summarize(samples[backend.name])
        records.append(
            {
                "kind": "model",
                "backend": backend.name,
                "provider": backend.provider,
                "threads": config.threads,
                "batch_size": case.batch_size,
                "seq_len": case.seq_len,
                "texts_per_s": texts / total,
                "tokens_per_s": tokens / total,
                "gflops": tokens / total * flops / 1e9,
                **asdict(stats),
            }
        )
    for backend in backends:
        if isinstance(backend, CompiledTorchBackend):
            record = next(r for r in records if r["backend"] == backend.name)
            record.update(compile_s=backend.compile_s, recompiles=backend.recompiles())
    return with_ratios(records)


def with_ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``ratio_vs_<peer>`` (throughput over the peer's) for every PyTorch CPU peer among one case's records."""
    for peer in TORCH_PEERS:
        rate = next((r["texts_per_s"] for r in records if r["backend"] == peer), None)
        if rate is not None:
            for record in records:
                record[f"ratio_vs_{peer.replace('-', '_')}"] = record["texts_per_s"] / rate
    return records


def _startup(config: BenchConfig, progress: Progress) -> list[dict[str, Any]]:
    progress(f"start-up: {config.runs} fresh processes per backend")
    codes = {"ort-cpu": runtime_code(config.bundle, config.threads)}
    if config.against is not None:
        codes["torch"] = torch_code(config.against, config.threads)
    samples: dict[str, list[StartupSample]] = {name: [] for name in codes}
    contestants = {name: startup_runner(code, samples[name]) for name, code in codes.items()}
    walls = interleave(contestants, runs=config.runs, warmup=1, idle_s=config.idle_s)
    records = []
    for name in codes:
        ours = samples[name][-config.runs :]  # the warm-up process is not counted
        rss = sorted(s.peak_rss_mb for s in ours)
        inside = summarize([s.in_process_s for s in ours])
        records.append(
            {
                "kind": "startup",
                "backend": name,
                "runs": config.runs,
                "wall_p50_ms": summarize(walls[name]).p50_ms,
                "wall_p90_ms": summarize(walls[name]).p90_ms,
                "in_process_p50_ms": inside.p50_ms,
                "peak_rss_mb_p50": rss[len(rss) // 2],
                "peak_rss_mb_max": rss[-1],
                "torch_loaded": any(s.torch_loaded for s in ours),
                "torch_blocked": name != "torch",
            }
        )
    return records


def _environment(config: BenchConfig, flops: int) -> dict[str, Any]:
    versions = {}
    for dist in ("lstm-onnx", "onnxruntime-gpu", "onnxruntime", "numpy", "torch", "onnx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "kind": "environment",
        "backend": None,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": versions,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "method": (
            f"round-robin interleaving in rotating order; {config.warmup} warm-up rounds excluded; "
            f"{config.runs} timed runs per figure; {config.idle_s * 1e3:.0f} ms idle before each timed call; "
            "ORT intra/inter-op spinning off (session.intra_op.allow_spinning=0); "
            f"{config.threads} intra-op thread(s) for ORT and torch alike"
        ),
        "flops_per_token": flops,
        "flops_formula": FLOPS_FORMULA,
    }


def bench(config: BenchConfig, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run the whole benchmark.

    Args:
        config: What to run.
        progress: Receives one-line progress messages (for stderr).

    Returns:
        Records (see the module docstring), environment first.

    Raises:
        BundleError: The bundle is broken.
        DataError: ``config.data`` cannot be read.
    """
    say = progress or (lambda _: None)
    bundle = load_bundle(config.bundle, SessionConfig(providers="cpu", intra_op_threads=config.threads))
    model = bundle.config["model"]
    flops = flops_per_token(model["embedding_dim"], model["hidden_size"], model["num_layers"], model["bidirectional"])
    records: list[dict[str, Any]] = [_environment(config, flops)]
    with tempfile.TemporaryDirectory(prefix="lstm-onnx-bench.") as work:
        backends, skipped = _backends(config, Path(work), say)
        records += [{"kind": "skipped", **asdict(s)} for s in skipped]
        cases, texts = _cases(config, bundle, say)
        for case in cases:
            say(f"model only: batch {case.batch_size}, length {case.seq_len}")
            records += _time_case(case, backends, config, flops)
        if config.end_to_end and texts:
            say(f"end to end: batch {config.end_to_end_batch}")
            peers = [b for b in backends if b.name in TORCH_PEERS]
            e2e = measure_end_to_end(
                bundle, texts, config.end_to_end_batch, config.runs, config.warmup, config.idle_s, peers
            )
            records += with_ratios(e2e)
    if config.startup:
        records += _startup(config, say)
    hidden = int(model["hidden_size"])
    ceiling = measure_matmul((2048, 2 * hidden, 4 * hidden), config.threads, config.runs)
    records.append({"kind": "ceiling", "backend": "numpy", **asdict(ceiling)})
    return records
