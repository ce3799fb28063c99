"""Benchmark library and `lstm-onnx bench`: statistics, interleaving, records (no timing assertions)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_onnx.bench.cases import REAL, fixed_case, real_case
from lstm_onnx.bench.flops import flops_per_token
from lstm_onnx.bench.startup import runtime_code, startup_runner
from lstm_onnx.bench.timing import interleave, rotation, summarize
from lstm_onnx.cli import app
from tests.conftest import REPO_ROOT, make_corpus

REQUIRED_KEYS = {"backend", "batch_size", "seq_len", "texts_per_s", "tokens_per_s", "p50_ms", "p90_ms", "p99_ms"}


def test_summarize_percentiles_on_known_data() -> None:
    stats = summarize([i / 1e3 for i in range(1, 101)])  # 1..100 ms
    assert (stats.runs, stats.mean_ms) == (100, pytest.approx(50.5))
    assert (stats.p50_ms, stats.p90_ms, stats.p99_ms) == (
        pytest.approx(50.5),
        pytest.approx(90.1),
        pytest.approx(99.01),
    )


def test_summarize_rejects_no_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        summarize([])


@pytest.mark.parametrize(("repetition", "order"), [(0, [0, 1, 2]), (1, [1, 2, 0]), (2, [2, 0, 1]), (3, [0, 1, 2])])
def test_rotation_rotates_order(repetition: int, order: list[int]) -> None:
    assert rotation(3, repetition) == order


def test_interleave_rotates_and_excludes_warmup() -> None:
    calls: list[tuple[str, int]] = []
    ticks = iter(range(1000))
    contestants = {name: (lambda rep, name=name: calls.append((name, rep))) for name in "abc"}
    samples = interleave(contestants, runs=3, warmup=1, idle_s=0.0, clock=lambda: float(next(ticks)))
    timed = [name for name, _ in calls[3:]]
    assert timed == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {name: len(s) for name, s in samples.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(s == [1.0, 1.0, 1.0] for s in samples.values())


def test_interleave_sleeps_before_each_timed_call() -> None:
    slept: list[float] = []
    interleave({"a": lambda _: None, "b": lambda _: None}, runs=4, warmup=2, idle_s=0.05, sleep=slept.append)
    assert slept == [0.05] * 8


def test_real_case_buckets_by_length() -> None:
    ids = [[5] * n for n in (9, 1, 7, 3, 5, 2, 8, 4)]
    case = real_case(ids, batch_size=2, batches=4, seed=0)
    widths = sorted(batch.shape[1] for batch, _ in case.batches)
    assert (case.seq_len, case.texts, widths) == (REAL, 8, [2, 4, 7, 9])


def test_fixed_case_has_no_padding() -> None:
    case = fixed_case(4, 16, vocab_size=50)
    ids, lengths = case.batch(7)
    assert ids.shape == (4, 16) and (lengths == 16).all() and ids.min() >= 2 and ids.max() < 50


def test_flops_per_token_formula() -> None:
    # Layer 1: 2 * 2*4*256*(50+256); layer 2: 2 * 2*4*256*(512+256).
    assert flops_per_token(50, 256, 2, True) == 1_253_376 + 3_145_728


def test_startup_runtime_process_runs_with_torch_blocked(tiny_bundle_dir: Path) -> None:
    samples: list = []  # type: ignore[type-arg]
    startup_runner(runtime_code(tiny_bundle_dir, 1), samples)(0)
    assert len(samples) == 1 and not samples[0].torch_loaded and samples[0].peak_rss_mb > 0


@pytest.fixture(scope="module")
def bench_records(tiny_bundle_dir: Path, tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # type: ignore[type-arg]
    data = tmp_path_factory.mktemp("bench") / "reviews.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Review Body", "Star Class"])  # not the default names: --text-field/--label-field
        writer.writerows(make_corpus(40, seed=3))
    args = ["bench", str(tiny_bundle_dir), "--against", str(tiny_run_dir), "--data", str(data)]
    args += ["--text-field", "Review Body", "--label-field", "Star Class"]
    args += ["--batch-sizes", "1,4", "--seq-lens", "8", "--runs", "30", "--idle-ms", "0", "--no-startup"]
    # torch.compile takes a minute to compile: its backend is covered by the slow test in test_torch_peers.py.
    args += ["--torch-peers", "torch,torch-masked"]
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_bench_json_model_records_have_required_keys(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    model = [r for r in bench_records if r["kind"] == "model"]
    assert {r["backend"] for r in model} == {"torch", "torch-masked", "ort-cpu", "ort-cpu-opt", "ort-cpu-int8"}
    assert {(r["batch_size"], r["seq_len"]) for r in model} == {(1, "real"), (4, "real"), (1, 8), (4, 8)}
    for record in model:
        assert REQUIRED_KEYS <= set(record) and {"ratio_vs_torch", "ratio_vs_torch_masked"} <= set(record)
        assert "ratio_vs_torch_compiled" not in record
        assert record["texts_per_s"] > 0 and record["tokens_per_s"] >= record["texts_per_s"]
        assert 0 < record["p50_ms"] <= record["p90_ms"] <= record["p99_ms"]


def test_bench_json_reports_skipped_gpu_backends_with_reason(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    skipped = {r["backend"]: r["reason"] for r in bench_records if r["kind"] == "skipped"}
    assert {"torch-cuda", "ort-cuda", "ort-cuda-fp16"} <= set(skipped) and all(skipped.values())


def test_bench_json_end_to_end_shares_sum_to_one(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    (e2e,) = [r for r in bench_records if r["kind"] == "end_to_end" and r["backend"] == "ort-cpu"]
    shares = e2e["share_tokenize"] + e2e["share_batching"] + e2e["share_inference"]
    assert shares == pytest.approx(1.0) and e2e["texts_per_s"] > 0


def test_bench_json_end_to_end_runs_each_torch_peer_with_ratios(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    e2e = {r["backend"]: r for r in bench_records if r["kind"] == "end_to_end"}
    assert set(e2e) == {"ort-cpu", "torch", "torch-masked"}
    for peer in ("torch", "torch-masked"):
        assert e2e[peer]["texts_per_s"] > 0
        key = f"ratio_vs_{peer.replace('-', '_')}"
        assert e2e["ort-cpu"][key] == pytest.approx(e2e["ort-cpu"]["texts_per_s"] / e2e[peer]["texts_per_s"])


def test_bench_torch_ratio_is_one_for_torch(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    ratios = [r["ratio_vs_torch"] for r in bench_records if r["kind"] == "model" and r["backend"] == "torch"]
    assert np.allclose(ratios, 1.0)


def test_bench_ratios_against_each_peer_are_consistent(bench_records: list[dict]) -> None:  # type: ignore[type-arg]
    model = [r for r in bench_records if r["kind"] == "model"]
    for record in model:
        peer = next(
            r
            for r in model
            if r["backend"] == "torch-masked"
            and (r["batch_size"], r["seq_len"]) == (record["batch_size"], record["seq_len"])
        )
        assert record["ratio_vs_torch_masked"] == pytest.approx(record["texts_per_s"] / peer["texts_per_s"])
        # Ratios against two peers differ exactly by the peers' own ratio.
        assert record["ratio_vs_torch"] == pytest.approx(record["ratio_vs_torch_masked"] * peer["ratio_vs_torch"])


def test_bench_rejects_unknown_torch_peer(tiny_bundle_dir: Path, tiny_run_dir: Path) -> None:
    args = ["bench", str(tiny_bundle_dir), "--against", str(tiny_run_dir), "--torch-peers", "torch,torch-jit"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "torch-jit" in result.stderr and result.stdout == ""


def test_bench_rejects_fewer_than_30_runs(tiny_bundle_dir: Path) -> None:
    result = CliRunner().invoke(app, ["bench", str(tiny_bundle_dir), "--runs", "29"])
    assert result.exit_code == 2


def test_bench_without_against_runs_with_torch_blocked(tiny_bundle_dir: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from typer.testing import CliRunner\nfrom lstm_onnx.cli import app\n"
        f"args = ['bench', {str(tiny_bundle_dir)!r}, '--batch-sizes', '2', '--seq-lens', '4', '--runs', '30',"
        " '--idle-ms', '0', '--no-startup', '--format', 'json']\n"
        "result = CliRunner().invoke(app, args)\nassert result.exit_code == 0, result.output\n"
        "print(sorted({r['backend'] for r in __import__('json').loads(result.stdout) if r['kind'] == 'model'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['ort-cpu', 'ort-cpu-int8', 'ort-cpu-opt']"


def test_bench_texts_without_tokens_follow_the_one_rule(tiny_bundle_dir: Path) -> None:
    from lstm_onnx.bench.cases import encode_texts
    from lstm_onnx.runtime.bundle import load_bundle
    from lstm_onnx.runtime.errors import EmptyInputError
    from lstm_onnx.runtime.session import SessionConfig

    bundle = load_bundle(tiny_bundle_dir, SessionConfig(providers="cpu"))
    with pytest.raises(EmptyInputError, match="position 1 of the benchmark texts is empty"):
        encode_texts(["a great film", "  <br />  "], bundle.tokenizer, bundle.vocab)


def test_bench_at_two_threads_adds_the_runtimes_row_parts(tiny_bundle_dir: Path) -> None:
    args = ["bench", str(tiny_bundle_dir), "--batch-sizes", "1,2", "--seq-lens", "300", "--runs", "30"]
    args += ["--idle-ms", "0", "--no-startup", "--threads", "2", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model = {r["backend"] for r in json.loads(result.stdout) if r["kind"] == "model"}
    assert model == {"ort-cpu", "ort-cpu-opt", "ort-cpu-int8", "ort-cpu-parts", "ort-cpu-int8-parts"}


def test_batch_major_backend_cuts_large_batches_into_parts_with_the_same_outputs(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstm_onnx.exporter.backends import OrtBackend
    from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS, MODEL_FILE
    from lstm_onnx.runtime.session import SessionConfig

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    model = tiny_bundle_dir / MODEL_FILE
    parts = OrtBackend("parts", model, SessionConfig(providers="cpu", batch_threads=2), batch_major=True)
    whole = OrtBackend("whole", model, SessionConfig(providers="cpu", batch_threads=2))
    rng = np.random.default_rng(0)
    feed = {INPUT_IDS: rng.integers(2, 30, (6, 100)).astype(np.int64), LENGTHS: rng.integers(1, 101, 6)}
    rows: list[int] = []
    inner = parts.session.session.run

    def run(out: list[str], f: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows.append(len(f[INPUT_IDS]))
        return list(inner(out, f))

    parts.session.session.run = run
    np.testing.assert_array_equal(parts.run(feed)[0], whole.run(feed)[0])  # fp32: bit for bit
    assert sorted(rows) == [3, 3]  # 600 padded tokens: two parts of 3 rows; run_all never cuts
