"""run_proof: every stage of the GPU proof in order, each within its budget, and the results written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstm_onnx.bench.gpu_proof.config import ProofConfig
from lstm_onnx.bench.gpu_proof.environment import code_origin, describe_machine, strict_fp32
from lstm_onnx.bench.gpu_proof.stages import Deadline, Proof
from lstm_onnx.bench.gpu_proof.training import audit_graph, export_stage, tagger_stage, train_stage, verify_stage

__all__ = ["Outcome", "run_proof"]

Progress = Callable[[str], None]


@dataclass
class Outcome:
    """A finished proof: its stages, what the machine was, and the files written."""

    proof: Proof
    config: ProofConfig
    machine: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


class _Loaded:
    """What the in-process stages share, loaded once: the model on the device, the bundles, real reviews."""

    def __init__(self, config: ProofConfig) -> None:
        self.config = config
        self._model: Any = None
        self._test: Any = None
        self._bundle: Any = None
        self._encoded: list[list[int]] | None = None
        self._targets: list[int] = []

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch

            from lstm_onnx.trainer.run_dir import load_run

            strict_fp32(torch)
            if self.config.device == "cpu":
                torch.set_num_threads(1)  # as ORT's CPU sessions timed here: one thread each
            self._model = load_run(self.config.work_dir / "run-classify").model.to(self.config.device).eval()
        return self._model

    @property
    def bundle(self) -> Any:
        if self._bundle is None:
            from lstm_onnx.runtime.bundle import load_bundle
            from lstm_onnx.runtime.session import SessionConfig

            session = SessionConfig(providers=self.config.device, intra_op_threads=1)
            self._bundle = load_bundle(self.config.work_dir / "bundle", session)
        return self._bundle

    def reviews(self, count: int, seed: int) -> Any:
        """``count`` test reviews, stratified, in a seeded random order (the test split is read once)."""
        from lstm_onnx.bench.gpu_proof.texts import sample_reviews
        from lstm_onnx.runtime.datasets import read_dataset

        if self._test is None:
            self._test = read_dataset(self.config.data, "test")
        return sample_reviews(self._test, count, seed)

    def encoded(self) -> tuple[list[list[int]], list[int]]:
        """Parity and timing reviews (one sample, the larger of the two counts), encoded on every core with the
        fp32 bundle's own tokenizer and vocabulary (read from its files: no session, so a CUDA failure cannot
        cost the CPU figures)."""
        if self._encoded is None:
            from lstm_onnx.bench.gpu_proof.texts import EncodePool
            from lstm_onnx.runtime.bundle_format import BundleConfig
            from lstm_onnx.runtime.json_text import parse_json
            from lstm_onnx.runtime.tokenizer import Tokenizer, Vocab
            from lstm_onnx.runtime.tokenizer_rules import load_rules

            folder = self.config.work_dir / "bundle"
            path = folder / "config.json"
            settings = BundleConfig.from_dict(parse_json(path.read_text(encoding="utf-8")), path)
            tokenizer = Tokenizer(settings.tokenizer, rules=load_rules(folder / "tokenizer.json"))
            sample = self.reviews(max(self.config.parity_texts, self.config.speed_texts), self.config.seed)
            index = {label: i for i, label in enumerate(settings.labels)}
            with EncodePool(tokenizer, Vocab.load(folder / "vocab.txt"), self.config.workers) as pool:
                self._encoded = pool.encode(sample.texts)
            self._targets = [index[label] for label in sample.labels]
        return self._encoded, self._targets


def _environment(config: ProofConfig) -> dict[str, Any]:
    machine = describe_machine(config.device)
    record: dict[str, Any] = {"machine": machine, "code": code_origin(Path.cwd())}
    differs = record["code"]["differs"]
    if config.device == "cuda" and machine["gpu"] is None:
        record.update(passed=False, reason=f"--device cuda, but {machine['gpu_missing']}")
    elif differs:
        record.update(
            passed=False,
            reason=f"the installed lstm_onnx is not this checkout's code ({len(differs)} file(s) differ, e.g. "
            f"{differs[0]}); run scripts/gpu_carry.sh again and resend its last folder",
        )
    return record


def _graphs(config: ProofConfig) -> dict[str, Any]:
    audits = {
        name: audit_graph(config.work_dir / folder / "model.onnx")
        for name, folder in (("fp32", "bundle"), ("fp16", "bundle-fp16"))
    }
    problems = [f"{name}: {p}" for name, audit in audits.items() for p in audit["problems"]]
    fp16_inputs = {n["x_dtype"] for n in audits["fp16"]["lstm"]}
    if fp16_inputs != {"float16"}:
        problems.append(f"fp16: LSTM inputs are {sorted(fp16_inputs)}, not float16 (the LSTM would not run in fp16)")
    record: dict[str, Any] = {"graphs": audits}
    if problems:
        record.update(passed=False, reason="; ".join(problems))
    return record


def _parity(config: ProofConfig, loaded: _Loaded, deadline: Deadline) -> dict[str, Any]:
    from lstm_onnx.bench.gpu_proof.parity import parity_stage, review_cases
    from lstm_onnx.exporter.backends import TorchModuleBackend
    from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS

    ids, targets = loaded.encoded()
    count = min(config.parity_texts, len(ids))
    reviews = review_cases(ids[:count], targets[:count], 64, config.seed)
    reference = TorchModuleBackend(
        loaded.model, (INPUT_IDS, LENGTHS), name=f"torch-{config.device}", device=config.device
    )
    bundles = {"fp32": config.work_dir / "bundle", "fp16": config.work_dir / "bundle-fp16"}
    vocab_size = int(loaded.model.config.vocab_size)
    return parity_stage(config.device, deadline, reference, bundles, reviews, vocab_size, config.workers, config.seed)


def _speed(config: ProofConfig, loaded: _Loaded, deadline: Deadline) -> dict[str, Any]:
    from lstm_onnx.bench.gpu_proof.speed import speed_stage, torch_contestants
    from lstm_onnx.exporter.backends import OrtBackend
    from lstm_onnx.runtime.session import SessionConfig

    ids, _ = loaded.encoded()
    ids = ids[: config.speed_texts]
    session = SessionConfig(providers=config.device, intra_op_threads=1)
    contestants: list[Any] = [
        OrtBackend(f"ort-{config.device}", config.work_dir / "bundle/model.onnx", session, batch_major=True),
        OrtBackend(f"ort-{config.device}-fp16", config.work_dir / "bundle-fp16/model.onnx", session, batch_major=True),
    ]
    for backend in contestants:
        backend.session  # noqa: B018 - build the sessions before anything is timed
    peers, compile_error = torch_contestants(loaded.model, config.device, config.compile_backend)
    record = speed_stage(deadline, contestants + peers, ids, config.batch_sizes, config.runs)
    if compile_error:
        record.update(passed=False, reason=f"torch.compile failed, timed without it: {compile_error}")
    return record


def _end_to_end(config: ProofConfig, loaded: _Loaded, deadline: Deadline) -> dict[str, Any]:
    from lstm_onnx.bench.gpu_proof.speed import end_to_end_stage

    texts = loaded.reviews(config.e2e_texts, config.seed + 1).texts
    return end_to_end_stage(
        deadline, loaded.bundle, texts, config.workers, config.e2e_batch_size, config.e2e_max_batch_tokens
    )


def run_proof(config: ProofConfig, progress: Progress | None = None) -> Outcome:
    """Run every stage (see the package docstring) and write the results.

    Args:
        config: What to run and where.
        progress: Receives a line when a stage starts and ends (the CLI prints them on stderr).

    Returns:
        The stages' records and the files written (results JSON, Markdown summary, and their copies).
    """
    from lstm_onnx.bench.gpu_proof.report import write_results

    say = progress or (lambda _: None)
    budgets = config.budgets
    proof = Proof(budgets.total)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    log = config.work_dir / "commands.log"
    log.write_text("", encoding="utf-8")
    loaded = _Loaded(config)
    outcome = Outcome(proof, config)
    stages: list[tuple[str, float, Callable[[Deadline], dict[str, Any]], tuple[str, ...], bool]] = [
        ("environment", budgets.environment, lambda d: _environment(config), (), False),
        ("train", budgets.train, lambda d: train_stage(config, d, log), ("environment",), False),
        ("export", budgets.export, lambda d: export_stage(config, d, log), ("train",), False),
        ("graphs", budgets.environment, lambda d: _graphs(config), ("export",), False),
        ("verify", budgets.verify, lambda d: verify_stage(config, d, log), ("export",), False),
        ("parity", budgets.parity, lambda d: _parity(config, loaded, d), ("export",), False),
        ("speed", budgets.speed, lambda d: _speed(config, loaded, d), ("export",), False),
        ("end_to_end", budgets.end_to_end, lambda d: _end_to_end(config, loaded, d), ("export",), False),
        ("tagger", budgets.tagger, lambda d: tagger_stage(config, d, log), ("environment",), True),
    ]
    for name, budget, work, needs, optional in stages:
        if name == "tagger" and config.tag_data is None:
            proof.records.append(_skipped(name, budget, "no tag data (--tag-data)"))
            say(f"[{name}] skipped: no tag data (--tag-data)")
            continue
        if proof.skip_reason(budget, needs, optional) is None:
            say(f"[{name}] starting ({min(budget, proof.left()):.0f} s budget, {proof.left():.0f} s left in all)")
        record = proof.run(name, budget, work, needs, optional)
        took = f" in {record.seconds:.1f} s" if record.status != "skipped" else ""
        say(f"[{name}] {record.status}{took}" + (f": {record.reason}" if record.reason else ""))
        if name == "environment":
            outcome.machine = record.result.get("machine", {})
    outcome.files = write_results(outcome, log)
    return outcome


def _skipped(name: str, budget: float, reason: str) -> Any:
    from lstm_onnx.bench.gpu_proof.stages import SKIPPED, StageRecord

    return StageRecord(name, SKIPPED, budget_s=budget, reason=reason)
