"""The GPU proof kit's CPU dry run: the same scripts and stages as on the GPU machine, tiny, on the CPU provider.

One module-scoped run goes the whole way the device calls go: ``gpu_carry.py prepare`` cuts tiny data, a stand-in
wheel (repacked and xz'd like ONNX Runtime's CUDA build) and the tokenizer rules into call folders;
``gpu_proof.sh --check-carry`` verifies them; ``gpu_proof.sh --device cpu --tiny`` joins, installs and runs every
stage with spaCy made unimportable, as on the GPU machine. The tests read its records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lstm_onnx.bench.gpu_proof.config import ProofConfig
from tests.bench.test_gpu_carry import gpu_carry, write_wheel
from tests.conftest import REPO_ROOT, make_corpus, make_tagged, write_conllu

CAPACITY = 40_000  # bytes per "call": small, so files are cut into parts across several calls
STAGES = ("environment", "train", "export", "graphs", "verify", "parity", "speed", "end_to_end", "tagger")


def _write_imdb(root: Path) -> Path:
    """A tiny aclImdb folder: 160 training and 240 test reviews (short polar sentences), plus unsup to leave out."""
    folder = root / "aclImdb"
    for split, count, seed in (("train", 160, 0), ("test", 240, 1)):
        for i, (text, label) in enumerate(make_corpus(count, seed)):
            path = folder / split / label / f"{i}_{8 if label == 'pos' else 2}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    (folder / "train" / "unsup").mkdir()
    (folder / "train" / "unsup" / "0_0.txt").write_text("Not labelled.", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prepare a carry, check it, run the whole kit on the CPU; return the paths, outputs and the results JSON."""
    from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, save_rules

    root = tmp_path_factory.mktemp("gpu_proof")
    sources = root / "sources"
    sources.mkdir()
    imdb = _write_imdb(sources / "imdb")
    tags = sources / "tags"
    tags.mkdir()
    for split, count, seed in (("train", 60, 0), ("dev", 12, 1), ("test", 12, 2)):
        write_conllu(tags / f"tiny-{split}.conllu", make_tagged(count, seed))
    save_rules(dump_spacy_rules(), sources / "tokenizer.json")
    wheel = write_wheel(sources)
    carry = root / "carry"
    tree = gpu_carry.CALL_LIMIT - gpu_carry.MARGIN - CAPACITY  # leaves CAPACITY bytes per call
    prepare = [sys.executable, "scripts/gpu_carry.py", "prepare", "--out", carry, "--cache", root / "cache"]
    prepare += ["--tree-bytes", str(tree), "--wheel-xz", wheel, "--imdb", imdb, "--tag-data", tags]
    prepare += ["--rules", sources / "tokenizer.json"]
    prepared = subprocess.run([str(a) for a in prepare], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    # On the GPU machine there is no spaCy: make it unimportable for every process the kit starts.
    shim = root / "no-spacy" / "spacy"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('spaCy is not installed on the GPU machine')\n")
    out = root / "out"
    out.mkdir()
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "CARRY": str(carry),
        "DEST": str(root / "joined"),
        "OUT": str(out),
        "PYTHONPATH": str(root / "no-spacy"),
    }
    check = subprocess.run(
        ["bash", "scripts/gpu_proof.sh", "--check-carry"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    kit = ["bash", "scripts/gpu_proof.sh", "--device", "cpu", "--tiny", "--workers", "2"]
    kit += ["--work-dir", str(root / "work"), "--results-dir", str(root / "results")]
    started = time.perf_counter()
    done = subprocess.run(kit, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    found = sorted((root / "results").glob("gpu-proof-cpu-tiny-*.json"))
    results = json.loads(found[-1].read_text(encoding="utf-8")) if found else {}
    return {
        "root": root,
        "prepared": prepared,
        "check": check,
        "done": done,
        "seconds": seconds,
        "results": results,
        "stages": {s["stage"]: s for s in results.get("stages", [])},
        "out": out,
    }


def test_gpu_carry_plans_several_calls_and_prints_them(dry_run: dict[str, Any]) -> None:
    prepared = dry_run["prepared"].stdout
    calls = sorted((dry_run["root"] / "carry").glob("c[0-9]*"))
    assert len(calls) >= 3, prepared
    assert f'carry=["{dry_run["root"] / "carry"}/c1"], command="bash scripts/gpu_proof.sh --check-carry"' in prepared
    assert f'c{len(calls)}"], command="bash scripts/gpu_proof.sh", timeout_s=600' in prepared
    assert all(sum(p.stat().st_size for p in call.iterdir()) <= CAPACITY + 4_000 for call in calls)
    assert (calls[-1] / "carry.json").is_file()


def test_gpu_proof_check_carry_verifies_every_folder(dry_run: dict[str, Any]) -> None:
    check = dry_run["check"]
    assert check.returncode == 0, check.stderr
    assert "c1: ok" in check.stdout and "all " in check.stdout and "calls here" in check.stdout


def test_gpu_proof_dry_run_passes_every_stage_within_its_budget(dry_run: dict[str, Any]) -> None:
    done = dry_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    statuses = {name: record["status"] for name, record in dry_run["stages"].items()}
    assert statuses == dict.fromkeys(STAGES, "passed"), {n: dry_run["stages"][n]["reason"] for n in statuses}
    assert not any(record["over_budget"] for record in dry_run["stages"].values())
    # 40-45 s on this project's 2-core machine when quiet, up to 90 s with other jobs on both cores: the budget is
    # the bound (the stages stop themselves), plus joining and installing the carry.
    tiny = ProofConfig.make("cpu", True, Path("data"))
    assert dry_run["seconds"] < tiny.budgets.total + 30


def test_gpu_proof_installs_the_carried_wheel_and_records_the_machine(dry_run: dict[str, Any]) -> None:
    assert (dry_run["root"] / "joined/site/gpu_proof_dummy/__init__.py").read_text() == "VALUE = 42\n"
    machine = dry_run["results"]["machine"]
    assert machine["gpu"] is None and {"torch", "onnxruntime", "numpy"} <= set(machine["versions"])
    assert machine["settings"]["NVIDIA_TF32_OVERRIDE"] == "0"
    assert dry_run["stages"]["environment"]["result"]["code"]["from"] == "checkout"
    assert dry_run["results"]["command"].startswith("python -m lstm_onnx.bench.gpu_proof --data ")


def test_gpu_proof_trains_without_spacy_and_records_epochs(dry_run: dict[str, Any]) -> None:
    train = dry_run["stages"]["train"]["result"]
    assert train["epochs_run"] == 3 and len(train["epoch_seconds"]) == 3
    assert train["test_texts"] == 240 and 0.5 <= train["test_accuracy"] <= 1.0
    assert "--tokenizer-rules" in train["commands"][0]["command"]
    assert json.loads((dry_run["root"] / "joined/data/tokenizer.json").read_text()) == json.loads(
        (dry_run["root"] / "work/run-classify/tokenizer.json").read_text()
    )


def test_gpu_proof_graphs_are_what_cudnn_accepts(dry_run: dict[str, Any]) -> None:
    graphs = dry_run["stages"]["graphs"]["result"]["graphs"]
    for variant, audit in graphs.items():
        assert audit["problems"] == [], variant
        assert {(n["layout"], n["sequence_lens_dtype"], n["sequence_lens_from"]) for n in audit["lstm"]} == {
            (0, "int32", "Cast")
        }
        assert audit["outputs"] == {"logits": "float32"} and set(audit["inputs"].values()) == {"int64"}
    assert {n["x_dtype"] for n in graphs["fp16"]["lstm"]} == {"float16"}


def test_gpu_proof_parity_within_tolerance_on_the_cpu(dry_run: dict[str, Any]) -> None:
    from lstm_onnx.exporter.tolerances import FP32

    parity = dry_run["stages"]["parity"]["result"]
    backends = parity["backends"]
    assert set(backends) == {"ort-cpu", "ort-cpu-fp16"} and parity["complete"]
    assert set(parity["skipped"]) == {"ort-cuda", "ort-cuda-fp16"}
    assert backends["ort-cpu"]["max_abs_diff"] <= (FP32.atol or 0) and backends["ort-cpu"]["label_agreement"] == 1.0
    assert backends["ort-cpu"]["invariance_diff"] <= (FP32.atol or 0)
    assert backends["ort-cpu-fp16"]["label_agreement"] >= 0.99 and parity["reviews"] == 60
    assert all(b["status"] == "passed" for b in backends.values())
    assert parity["placement"]["ort-cpu"]["lstm"] and set(parity["placement"]["ort-cpu"]["lstm"].values()) == {
        "CPUExecutionProvider"
    }
    verify = dry_run["stages"]["verify"]["result"]["parity"]
    assert verify["onnxruntime-cpu"]["status"] == "passed" and verify["onnxruntime-cuda"]["status"] == "skipped"


def test_gpu_proof_times_every_contestant_at_every_batch_size(dry_run: dict[str, Any]) -> None:
    speed = dry_run["stages"]["speed"]["result"]
    contestants = {"ort-cpu", "ort-cpu-fp16", "torch-cpu-eager", "torch-cpu-compiled"}
    assert {(r["batch_size"], r["backend"]) for r in speed["records"]} == {
        (b, c) for b in (1, 8, 32) for c in contestants
    }
    assert all(r["runs"] == 10 and r["texts_per_s"] > 0 for r in speed["records"])
    assert all(r["ratio_vs_torch_eager"] and r["ratio_vs_torch_compiled"] for r in speed["records"])
    assert speed["compiled"]["torch-cpu-compiled"]["recompiles"] == 0


def test_gpu_proof_end_to_end_matches_the_classifier(dry_run: dict[str, Any]) -> None:
    e2e = dry_run["stages"]["end_to_end"]["result"]
    assert e2e["reviews"] == 200 and e2e["workers"] == 2 and e2e["labels_identical"]
    assert e2e["max_prob_diff_parallel_vs_serial"] == 0.0  # the same batches through the same session
    assert all(e2e[k]["reviews_per_s"] > 0 for k in ("serial", "parallel", "tokenize_parallel", "model_only"))


def test_gpu_proof_tagger_stage_trains_and_exports(dry_run: dict[str, Any]) -> None:
    tagger = dry_run["stages"]["tagger"]["result"]
    assert tagger["epochs_run"] == 3 and tagger["graph"]["problems"] == []
    assert tagger["export_parity"]["passed"] and tagger["export_parity"]["max_abs_diff"] <= 1e-5


def test_gpu_proof_writes_results_and_copies_them_out(dry_run: dict[str, Any]) -> None:
    copied = {p.name for p in dry_run["out"].iterdir()}
    assert any(n.endswith(".json") for n in copied) and any(n.endswith(".md") for n in copied)
    assert any(n.endswith("-commands.log") for n in copied) and "gpu-proof-console.log" in copied
    summary = next(p for p in dry_run["out"].iterdir() if p.suffix == ".md").read_text(encoding="utf-8")
    assert summary.startswith("# GPU proof: CPU dry run (--device cpu --tiny) — passed")
    assert "| parity | passed |" in summary and "## Speed on real reviews" in summary
    assert dry_run["done"].stdout.rstrip().splitlines()[-1].startswith("results: ")


def test_proof_stages_skip_what_they_cannot_run_and_record_failures() -> None:
    from lstm_onnx.bench.gpu_proof.stages import Proof

    now = [0.0]
    proof = Proof(100.0, clock=lambda: now[0])

    def slow(deadline: Any) -> dict[str, Any]:
        now[0] += 70.0
        return {"left_at_start": 70.0 + deadline.left()}

    def broken(deadline: Any) -> dict[str, Any]:
        raise RuntimeError("cuDNN said no")

    assert proof.run("a", 80.0, slow).result == {"left_at_start": 80.0}
    failed = proof.run("b", 10.0, broken)
    assert failed.status == "failed" and failed.reason == "RuntimeError: cuDNN said no"
    assert "cuDNN said no" in failed.result["traceback"][-1]
    assert proof.run("c", 10.0, slow, needs=("b",)).reason == "needs b"
    assert proof.run("d", 40.0, slow, optional=True).reason == "not enough time left (30 s of the 40 s it needs)"
    assert proof.run("e", 50.0, lambda d: {"budget": d.left()}).result == {"budget": 30.0}  # what is left of 100 s
    assert proof.run("f", 5.0, lambda d: {"passed": False, "reason": "parity"}).status == "failed"
    assert not proof.passed and [r.status for r in proof.records] == [
        "passed",
        "failed",
        *["skipped"] * 2,
        "passed",
        "failed",
    ]


def test_run_command_stops_a_command_at_its_budget_with_ctrl_c(tmp_path: Path) -> None:
    from lstm_onnx.bench.gpu_proof.stages import run_command

    script = (
        "import time\ntry:\n    print('epoch 1', flush=True); time.sleep(60)\n"
        "except KeyboardInterrupt:\n    print('saved')\n    raise SystemExit(130)\n"
    )
    done = run_command([sys.executable, "-c", script], 2.0, log=tmp_path / "log")
    assert done.interrupted and done.returncode == 130 and not done.ok
    assert done.output_tail == ["epoch 1", "saved"] and 2.0 <= done.seconds < 20.0
    assert (tmp_path / "log").read_text().splitlines()[-2:] == ["epoch 1", "saved"]


def test_gpu_proof_on_a_machine_without_gpu_fails_at_once_and_says_why(tmp_path: Path) -> None:
    import torch

    from lstm_onnx.bench.gpu_proof.__main__ import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the kit would run")

    args = ["--device", "cuda", "--data", str(tmp_path / "no-data"), "--work-dir", str(tmp_path / "work")]
    assert main([*args, "--results-dir", str(tmp_path / "results")]) == 1
    (found,) = (tmp_path / "results").glob("gpu-proof-cuda-*.json")
    stages = {s["stage"]: s for s in json.loads(found.read_text())["stages"]}
    assert stages["environment"]["status"] == "failed" and "sees no CUDA device" in stages["environment"]["reason"]
    assert stages["train"]["reason"] == "needs environment" and stages["speed"]["reason"] == "needs export"
    summary = next((tmp_path / "results").glob("gpu-proof-cuda-*.md")).read_text()
    assert summary.startswith("# GPU proof: no GPU found (--device cuda) — FAILED")


def test_train_stopped_at_its_budget_tests_the_epochs_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The epochs run until the budget's reserve, then Ctrl-C, then --resume --epochs <done> tests the kept weights."""
    import time as clock

    from lstm_onnx.bench.gpu_proof import training
    from lstm_onnx.bench.gpu_proof.stages import Deadline

    monkeypatch.setattr(training, "_RESUME_MIN_S", 1.0)
    fake = tmp_path / "fake_train.py"  # stands in for `lstm-onnx train`: two epochs, then waits for Ctrl-C
    fake.write_text(
        "import json, sys, time\n"
        "run = sys.argv[sys.argv.index('--out') + 1]\n"
        "if '--resume' in sys.argv:\n"
        "    print('resumed', sys.argv[sys.argv.index('--epochs') + 1]); sys.exit(0)\n"
        "import os; os.makedirs(run, exist_ok=True)\n"
        "open(run + '/metrics.json', 'w').write(json.dumps({'history': [{}, {}]}))\n"
        "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    sys.exit(130)\n"
    )
    argv = [sys.executable, str(fake), "--out", str(tmp_path / "run"), "--epochs", "8"]
    commands = training._train_within(argv, tmp_path / "run", Deadline(clock.monotonic() + 4.0), tmp_path / "log", {})
    assert [c.interrupted for c in commands] == [True, False] and commands[1].ok
    assert commands[1].command.endswith("--resume --epochs 2") and "--epochs 8" not in commands[1].command
    assert commands[1].output_tail == ["resumed 2"]
