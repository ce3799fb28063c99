"""train(...) → TrainResult: split, tokenize, build vocab, train with checkpoints, evaluate, write the run dir."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lstm_onnx import __version__
from lstm_onnx.runtime.contract import TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.datasets import LabelledTexts, check_labels, stratified_split
from lstm_onnx.runtime.errors import BundleError, DataError
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.metrics import classification_report
from lstm_onnx.runtime.provenance import data_record, describe_data
from lstm_onnx.runtime.tokenizer import TokenizerConfig, Vocab
from lstm_onnx.runtime.tokenizer_rules import save_rules
from lstm_onnx.trainer.checkpoint import load_state, save_state, state_path
from lstm_onnx.trainer.config import ModelConfig, TrainConfig
from lstm_onnx.trainer.data import (
    EncodedTexts,
    crop,
    encode_texts,
    eval_batches,
    num_train_batches,
    require_texts,
    tokenize_texts,
)
from lstm_onnx.trainer.data import train_batches as make_train_batches
from lstm_onnx.trainer.divergence import require_finite_loss, require_finite_record
from lstm_onnx.trainer.embeddings import read_vectors
from lstm_onnx.trainer.model import BiLSTMClassifier
from lstm_onnx.trainer.optim import init_embedding, make_optimizer
from lstm_onnx.trainer.plot import CURVES_FILE, plot_curves
from lstm_onnx.trainer.progress import NullProgress, TrainProgress
from lstm_onnx.trainer.resume import (
    check_settings_unedited,
    check_test_data,
    checkpoint_mismatch,
    continues_run,
    pinned_rules,
    run_guard,
    settings_record,
)
from lstm_onnx.trainer.run_dir import WEIGHTS_FILE, atomic_write_json, load_weights, save_weights
from lstm_onnx.trainer.run_format import CONFIG_FILE, METRICS_FILE, RunConfig, RunMetrics, read_run_config
from lstm_onnx.trainer.unpacked import forward_unpacked

__all__ = ["TrainResult", "evaluate_model", "resolve_device", "train"]

# Keys of TrainConfig that may change when resuming (extending a run); anything else must match.
_RESUMABLE_CHANGES = {"epochs", "patience", "device", "threads", "tokenize_workers", "eval_batch_size"}


@dataclass
class TrainResult:
    """What a training run produced (all of it is also in the run directory).

    Attributes:
        run_dir: The run directory.
        history: One record per epoch (losses, accuracies, learning rate).
        best_epoch: The epoch whose weights were kept (best validation accuracy).
        test: Test metrics (``runtime.metrics.classification_report``), or ``None`` without test data.
        stopped_early: Training stopped before ``epochs`` for lack of validation progress.
        info: Data sizes, vocabulary size, embedding coverage and timings.
    """

    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    test: dict[str, Any] | None
    stopped_early: bool
    info: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """Map ``auto|cpu|cuda`` to a device.

    Raises:
        DataError: ``cuda`` was asked for but no CUDA device is available (no silent CPU fallback).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda was requested but torch sees no CUDA device; use --device cpu or auto.")
    return torch.device(name)


def _fingerprint(data: LabelledTexts) -> str:
    digest = hashlib.sha256()
    for text, label in zip(data.texts, data.labels, strict=True):
        digest.update(label.encode("utf-8") + b"\x1f" + text.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(array).to(device, non_blocking=True)


@torch.no_grad()
def evaluate_model(
    model: BiLSTMClassifier, data: EncodedTexts, batch_size: int, device: torch.device, amp: bool = False
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy loss and predicted class ids over ``data`` (model in eval mode).

    Returns:
        ``(loss, predictions)`` with predictions int64 (N) in ``data``'s order.
    """
    model.eval()
    predictions = np.zeros(len(data), dtype=np.int64)
    total = 0.0
    for rows, batch in eval_batches(data, batch_size):
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(_to_device(batch.ids, device), _to_device(batch.lengths, device))
        targets = _to_device(batch.targets, device)
        total += float(nn.functional.cross_entropy(logits.float(), targets, reduction="sum"))
        predictions[rows] = logits.argmax(dim=1).cpu().numpy()
    return total / max(len(data), 1), predictions


def _lr_factor(warmup_steps: int, lr_decay: float, steps_per_epoch: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        warm = min(1.0, 0.1 + 0.9 * step / warmup_steps) if warmup_steps else 1.0
        return warm * lr_decay ** (step // steps_per_epoch)

    return factor


def _recorded_train_config(config: TrainConfig) -> dict[str, Any]:
    """The training settings as the run records them: the vectors file by name (its digest goes under ``data``)."""
    recorded = config.to_dict()
    if config.embeddings:
        recorded["embeddings"] = Path(config.embeddings).name
    return recorded


def _check_resume_config(saved: dict[str, Any], config: TrainConfig, run_dir: Path) -> None:
    current = _recorded_train_config(config)
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        raise BundleError(
            f"Cannot resume {run_dir}: setting(s) {changed} differ from the saved run "
            f"(saved {[saved.get(k) for k in changed]}, now {[current[k] for k in changed]}). "
            "Use the same settings, or start a new run in another --out directory."
        )


def train(
    train_data: LabelledTexts,
    out_dir: Path,
    model_config: ModelConfig,
    config: TrainConfig,
    tokenizer_config: TokenizerConfig | None = None,
    test_data: LabelledTexts | None = None,
    resume: bool = False,
    progress: TrainProgress | None = None,
    tokenizer_rules: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a BiLSTM classifier and write a complete run directory (see ``trainer.run_dir``).

    Validation is a seeded, stratified ``config.val_fraction`` of ``train_data``. Labels are the sorted
    distinct training labels. The weights with the best validation accuracy are kept and tested.

    Args:
        train_data: Labelled training texts.
        out_dir: The run directory (created; must not hold a run unless ``resume``).
        model_config: Architecture; its ``vocab_size`` and ``num_labels`` are replaced by the data's, and
            ``embedding_dim`` by the vectors' dimension when ``config.embeddings`` is set.
        config: Training settings.
        tokenizer_config: Tokenizer settings saved with the run (default ``TokenizerConfig()``).
        test_data: Labelled test texts; without them no test metrics are computed.
        resume: Continue the run in ``out_dir`` from its last checkpoint; ``config.epochs`` may be larger. A run
            interrupted before its first checkpoint starts over. ``test_data`` must be the ones it was started with.
        progress: Progress sink (e.g. the CLI's progress bar).
        tokenizer_rules: Tokenizer rules to pin (``load_rules`` of a run's or bundle's ``tokenizer.json``), so
            training needs no spaCy; ``None`` pins the installed spaCy's. A resumed run keeps its own.

    Returns:
        The history, the best epoch and the test metrics.

    Raises:
        DataError: Bad data (unknown test labels, too little data, missing vectors file, no CUDA).
        BundleError: ``out_dir`` already holds a run (without ``resume``), or its checkpoint cannot be resumed
            (other settings or training data, or not the test data it was started with).
        TrainingError: The loss or a metric stopped being a finite number (the model diverged).
        WriteError: A run file could not be written (full disk, read-only file system, ...). A run that fails before
            its first checkpoint leaves nothing behind; past one, ``resume`` continues it.
    """
    progress = progress or NullProgress()
    run_dir = Path(out_dir)
    resume = continues_run(run_dir, resume, progress)
    with run_guard(run_dir, fresh=not resume):
        settings = (model_config, config, tokenizer_config or TokenizerConfig())
        # The rules are pinned here: the run keeps the ones it trained with, and every bundle copies them.
        rules = pinned_rules(run_dir, resume, tokenizer_rules)
        return _train(train_data, run_dir, settings, test_data, resume, rules, progress)


def _train(
    train_data: LabelledTexts,
    run_dir: Path,
    settings: tuple[ModelConfig, TrainConfig, TokenizerConfig],
    test_data: LabelledTexts | None,
    resume: bool,
    rules: dict[str, Any],
    progress: TrainProgress,
) -> TrainResult:
    """``train``'s run, once ``continues_run`` has said whether it starts at epoch 1 and ``pinned_rules`` which
    tokenizer rules it pins."""
    started = time.perf_counter()
    model_config, config, tokenizer_config = settings
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        # cuDNN runs nn.LSTM (packed sequences included); lengths vary per batch, so autotuning would not pay.
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = False

    state: dict[str, Any] | None = None
    fingerprint = _fingerprint(train_data)
    test_record = describe_data(test_data) if test_data is not None else None
    if resume:
        state = load_state(run_dir)
        saved = _read_saved_config(run_dir)
        check_settings_unedited(run_dir, state.get("run_settings"), saved, _RESUMABLE_CHANGES)
        _check_resume_config(saved.train or {}, config, run_dir)
        tokenizer_config = saved.tokenizer
        labels = list(saved.labels)
        if state.get("data_fingerprint") != fingerprint:
            raise BundleError(f"Cannot resume {run_dir}: the training data differ from the data it was started with.")
        check_test_data(run_dir, (saved.data or {}).get("test"), test_record, "pass them again with --test-data")
    else:
        labels = train_data.label_set()
        if len(labels) < 2:
            raise DataError(f"{train_data.source}: only one label {labels}; a classifier needs at least two.")
        problem = label_problem(labels)
        if problem:
            raise DataError(f"{train_data.source}: {problem}; fix the labels in the data.")
    if test_data is not None:
        check_labels(test_data, labels)

    for data in (train_data, *([test_data] if test_data else [])):
        require_texts(data)  # positions in the file, not in the shuffled split
    train_part, val_part = stratified_split(train_data, config.val_fraction, config.seed)
    progress.on_stage(f"tokenizing {len(train_data) + (len(test_data) if test_data else 0)} texts")
    all_texts = train_part.texts + val_part.texts + (test_data.texts if test_data else [])
    tokens = tokenize_texts(all_texts, tokenizer_config, config.tokenize_workers, rules=rules)
    n_train, n_val = len(train_part), len(val_part)
    train_tokens, val_tokens, test_tokens = (
        tokens[:n_train],
        tokens[n_train : n_train + n_val],
        tokens[n_train + n_val :],
    )

    vocab = (
        Vocab.load(run_dir / VOCAB_FILE)
        if resume
        else Vocab.build(train_tokens, min_freq=config.min_freq, max_size=config.max_vocab)
    )
    head, tail = config.train_head_tokens, config.train_tail_tokens
    eval_head = head if config.eval_crop else None
    train_enc = encode_texts(train_part, [crop(t, head, tail) for t in train_tokens], vocab, labels)
    val_enc = encode_texts(val_part, [crop(t, eval_head, tail) for t in val_tokens], vocab, labels)
    test_enc = (
        encode_texts(test_data, [crop(t, eval_head, tail) for t in test_tokens], vocab, labels) if test_data else None
    )
    del tokens, train_tokens, val_tokens, test_tokens

    coverage = None
    if resume:
        try:
            model_config = ModelConfig.from_dict(_read_saved_config(run_dir).model)
        except (TypeError, ValueError) as err:
            raise checkpoint_mismatch(run_dir, err) from err
        if (len(vocab), len(labels)) != (model_config.vocab_size, model_config.num_labels):
            raise checkpoint_mismatch(run_dir, ValueError(f"{len(vocab)} tokens and {len(labels)} labels"))
    else:
        changes: dict[str, Any] = {"vocab_size": len(vocab), "num_labels": len(labels)}
        if config.embeddings:
            progress.on_stage(f"reading vectors from {config.embeddings}")
            coverage = read_vectors(config.embeddings, vocab, config.seed)
            changes["embedding_dim"] = coverage.dim
            progress.on_stage(f"vectors cover {coverage.found}/{coverage.total} tokens ({coverage.fraction:.1%})")
        model_config = dataclasses.replace(model_config, **changes)

    torch.manual_seed(config.seed)
    model = BiLSTMClassifier(model_config)
    init_embedding(model.embedding, coverage, config)
    model.to(device)
    optimizer = make_optimizer(model, config)
    steps_per_epoch = num_train_batches(len(train_enc), config.batch_size, config.bucket_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config.warmup_steps, config.lr_decay, steps_per_epoch)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history: list[dict[str, Any]] = []
    timing: list[float] = []
    best_acc, best_epoch, bad_epochs, start_epoch = -1.0, 0, 0, 1
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as err:  # shapes that do not fit: an edited config.json
            raise checkpoint_mismatch(run_dir, err) from err
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        history, timing = list(state["history"]), list(state["timing"])
        best_acc, best_epoch, bad_epochs = state["best_acc"], state["best_epoch"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        coverage_info = state.get("coverage")
        weights_digest = state.get("weights_sha256")  # None in checkpoints from before digests were recorded
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        vocab.save(run_dir / VOCAB_FILE)
        save_rules(rules, run_dir / TOKENIZER_RULES_FILE)
        coverage_info = None if coverage is None else {"found": coverage.found, "total": coverage.total}
        weights_digest = None
    run_config = RunConfig(
        model=model_config.to_dict(),
        train=_recorded_train_config(config),
        tokenizer=tokenizer_config,
        labels=labels,
        data={
            "train": describe_data(train_data),
            "test": test_record,
            "embeddings": data_record(config.embeddings) if config.embeddings else None,
            "train_texts": len(train_enc),
            "val_texts": len(val_enc),
            "test_texts": len(test_enc) if test_enc else 0,
        },
        toolkit_version=_toolkit_version(),
    )
    atomic_write_json(run_dir / CONFIG_FILE, run_config.to_dict())
    info: dict[str, Any] = {
        "train_texts": len(train_enc),
        "val_texts": len(val_enc),
        "test_texts": len(test_enc) if test_enc else 0,
        "vocab_size": len(vocab),
        "embedding_coverage": coverage_info,
        "device": str(device),
        "prepare_seconds": round(time.perf_counter() - started, 2),
    }

    stopped_early = bool(config.patience and bad_epochs >= config.patience)
    for epoch in range(start_epoch, config.epochs + 1):
        if stopped_early:
            break
        epoch_started = time.perf_counter()
        progress.on_epoch_start(epoch, config.epochs, steps_per_epoch)
        train_loss, train_acc = _train_epoch(
            model, train_enc, optimizer, scheduler, scaler, config, epoch, device, use_amp, progress
        )
        val_loss, val_pred = evaluate_model(model, val_enc, config.eval_batch_size, device, use_amp)
        val_acc = float(np.mean(val_pred == val_enc.targets))
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "lr": optimizer.param_groups[0]["lr"],
        }
        require_finite_record(record, f"epoch {epoch}")
        history.append(record)
        timing.append(round(time.perf_counter() - epoch_started, 2))
        if val_acc > best_acc:
            best_acc, best_epoch, bad_epochs = val_acc, epoch, 0
            weights_digest = save_weights(run_dir / WEIGHTS_FILE, model)
        else:
            bad_epochs += 1
        stopped_early = bool(config.patience and bad_epochs >= config.patience and epoch < config.epochs)
        checkpoint: dict[str, Any] = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "history": history,
            "timing": timing,
            "best_acc": best_acc,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "data_fingerprint": fingerprint,
            "coverage": coverage_info,
            "weights_sha256": weights_digest,
            "run_settings": settings_record(run_config, _RESUMABLE_CHANGES),
        }
        if device.type == "cuda":
            checkpoint["cuda_rng"] = torch.cuda.get_rng_state()
        save_state(run_dir, checkpoint)
        _write_metrics(run_dir, history, best_epoch, None, stopped_early, info, timing, weights_digest)
        progress.on_epoch_end(record)

    # The kept weights are tested from the file, which must be the one this run wrote (a resumed run checks the
    # digest its checkpoint recorded): the test metrics are recorded with that digest.
    kept, weights_digest = load_weights(run_dir, weights_digest, f"the checkpoint {state_path(run_dir)}")
    model.load_state_dict(kept)
    model.to(device)
    test_metrics = None
    if test_enc is not None:
        progress.on_stage(f"testing on {len(test_enc)} texts")
        test_loss, test_pred = evaluate_model(model, test_enc, config.eval_batch_size, device, use_amp)
        test_metrics = {"loss": test_loss, **classification_report(test_enc.targets, test_pred, labels).to_dict()}
        require_finite_record(test_metrics, "the test set")
    info["total_seconds"] = round(time.perf_counter() - started, 2)
    _write_metrics(run_dir, history, best_epoch, test_metrics, stopped_early, info, timing, weights_digest)
    plot_curves(history, run_dir / CURVES_FILE)
    return TrainResult(run_dir, history, best_epoch, test_metrics, stopped_early, info)


def _train_epoch(
    model: BiLSTMClassifier,
    data: EncodedTexts,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    epoch: int,
    device: torch.device,
    use_amp: bool,
    progress: TrainProgress,
) -> tuple[float, float]:
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    params = [p for p in model.parameters() if p.requires_grad]
    # The batch order depends only on (seed, epoch), so a resumed run sees the same batches.
    batches = make_train_batches(data, config.batch_size, config.bucket_batches, config.seed * 100_003 + epoch)
    for step, batch in enumerate(batches, start=1):
        ids, lengths = _to_device(batch.ids, device), _to_device(batch.lengths, device)
        targets = _to_device(batch.targets, device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            # cuDNN runs packed sequences well; on the CPU their backward is quadratic (trainer.unpacked).
            logits = model(ids, lengths) if device.type == "cuda" else forward_unpacked(model, ids, lengths)
        loss = nn.functional.cross_entropy(logits.float(), targets)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if config.clip_norm:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(params, config.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = len(batch.targets)
        value = float(loss.detach())  # the one sync per batch there always was
        require_finite_loss(value, epoch, step)
        total_loss += value * n
        correct += int((logits.detach().argmax(dim=1) == targets).sum())
        seen += n
        progress.on_batch(total_loss / seen, correct / seen)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _read_saved_config(run_dir: Path) -> RunConfig:
    try:
        return read_run_config(run_dir)
    except BundleError as err:
        raise BundleError(f"Cannot resume {run_dir}: {err}") from err


def _write_metrics(
    run_dir: Path,
    history: list[dict[str, Any]],
    best_epoch: int,
    test: dict[str, Any] | None,
    stopped_early: bool,
    info: dict[str, Any],
    timing: list[float],
    weights_sha256: str | None,
) -> None:
    metrics = RunMetrics(
        history, best_epoch, stopped_early, test, info, epoch_seconds=timing, weights_sha256=weights_sha256
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics.to_dict())


def _toolkit_version() -> str:
    return __version__
