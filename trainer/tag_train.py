"""train_tagger(...) → TagTrainResult: vocabularies, training with checkpoints and early stopping, test metrics.

The run directory has the classifier's layout (``trainer.run_dir``) plus ``chars.txt``; its ``config.json``
says ``"task": "tag"``. Dev accuracy picks the kept weights; per-tag precision/recall/F1 on dev are recorded
every epoch, and ``metrics.json`` holds the test report as ``test`` (``test.accuracy``: token accuracy).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from lstm_onnx import __version__
from lstm_onnx.runtime.contract import CHAR_VOCAB_FILE, TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError, DataError
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.tagging_data import TaggedSentences
from lstm_onnx.runtime.tagging_encode import build_char_vocab, word_key
from lstm_onnx.runtime.tagging_eval import tag_report
from lstm_onnx.runtime.tokenizer import PAD_ID, UNK_ID, TokenizerConfig, Vocab
from lstm_onnx.runtime.tokenizer_rules import save_rules
from lstm_onnx.trainer.checkpoint import load_state, save_state, state_path
from lstm_onnx.trainer.config import TrainConfig
from lstm_onnx.trainer.divergence import require_finite_loss, require_finite_record
from lstm_onnx.trainer.embeddings import read_vectors, vector_words
from lstm_onnx.trainer.optim import init_embedding, make_optimizer
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
from lstm_onnx.trainer.run_format import CONFIG_FILE, METRICS_FILE, TAG_TASK, RunConfig, RunMetrics
from lstm_onnx.trainer.tag_batches import IGNORE_INDEX, TagEncoder, batch_order
from lstm_onnx.trainer.tag_config import TaggerConfig
from lstm_onnx.trainer.tagger_model import BiLSTMTagger
from lstm_onnx.trainer.train import resolve_device

__all__ = ["TagTrainResult", "evaluate_tagger", "train_tagger"]

# Settings that may change when resuming (extending a run); anything else must match the saved run.
_RESUMABLE = {"epochs", "patience", "device", "threads", "eval_batch_size"}


@dataclass
class TagTrainResult:
    """What a tagging run produced (also in the run directory).

    Attributes:
        run_dir: The run directory.
        history: One record per epoch.
        best_epoch: Epoch of the kept weights (best dev accuracy).
        test: Test report (``ClassificationReport.to_dict()`` over tokens), or ``None`` without test data.
        stopped_early: Stopped before ``epochs`` for lack of dev progress.
        info: Sizes, embedding coverage and timings.
    """

    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    test: dict[str, Any] | None
    stopped_early: bool
    info: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def evaluate_tagger(
    model: BiLSTMTagger, data: TagEncoder, batch_size: int, device: torch.device
) -> tuple[float, list[np.ndarray]]:
    """Mean token loss and predicted tag ids per sentence (model in eval mode, packed forward).

    Returns:
        ``(loss, predictions)``: predictions[i] int64 (len of sentence i), in ``data``'s order.
    """
    model.eval()
    predictions: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(data.lengths)
    total, count = 0.0, 0
    for batch in data.eval_batches(batch_size):
        logits = model(batch.ids.to(device), batch.char_ids.to(device), batch.lengths.to(device))
        targets = batch.targets.to(device)
        known = targets >= 0
        total += float(functional.cross_entropy(logits[known], targets[known], reduction="sum"))
        count += int(known.sum())
        best = logits.argmax(dim=2).cpu().numpy()
        for b, row in enumerate(batch.rows):
            predictions[row] = best[b, : data.lengths[row]]
    return total / max(count, 1), predictions


def _report(data: TagEncoder, predictions: list[np.ndarray], labels: list[str]) -> dict[str, Any]:
    return tag_report(data.data.tags, [[labels[int(k)] for k in row] for row in predictions], labels)


def _build_vocab(train: TaggedSentences, config: TrainConfig, model: TaggerConfig) -> Vocab:
    words = Vocab.build(
        ([word_key(t) for t in s] for s in train.tokens), min_freq=config.min_freq, max_size=config.max_vocab
    )
    if not (config.embeddings and model.vectors_vocab):
        return words
    extra = [w for w in vector_words(config.embeddings) if w not in words.stoi and "\n" not in w]
    return Vocab([*words.itos, *dict.fromkeys(extra)])


def train_tagger(
    train: TaggedSentences,
    dev: TaggedSentences,
    out_dir: Path,
    model_config: TaggerConfig,
    config: TrainConfig,
    test: TaggedSentences | None = None,
    tagset: str = "upos",
    resume: bool = False,
    progress: TrainProgress | None = None,
    tokenizer_rules: dict[str, Any] | None = None,
) -> TagTrainResult:
    """Train a BiLSTM tagger and write a complete run directory.

    Args:
        train: Training sentences; dev: sentences picking the kept epoch and early stopping.
        out_dir: Run directory (created; must not hold a run unless ``resume``).
        model_config: Architecture; vocabulary sizes and ``num_labels`` are replaced by the data's, and
            ``embedding_dim`` by the vectors' when ``config.embeddings`` is set.
        config: Training settings.
        test: Test sentences; without them no test metrics.
        tagset: Recorded in the run config (``upos``/``xpos``).
        resume: Continue from the last checkpoint in ``out_dir``; ``config.epochs`` may be larger. A run
            interrupted before its first checkpoint starts over. ``test`` must be the file it was started with.
        progress: Progress sink.
        tokenizer_rules: Tokenizer rules to pin for raw text at serving (``load_rules`` of a ``tokenizer.json``),
            so training needs no spaCy; ``None`` pins the installed spaCy's. A resumed run keeps its own.

    Returns:
        History, best epoch and test metrics.

    Raises:
        DataError: Fewer than two tags, missing vectors file, no CUDA when asked for.
        BundleError: ``out_dir`` holds a run (without ``resume``) or cannot be resumed (other settings, or not
            the test file it was started with).
        TrainingError: The loss or a metric stopped being a finite number (the model diverged).
        WriteError: A run file could not be written; a run that fails before its first checkpoint leaves nothing.
    """
    progress = progress or NullProgress()
    run_dir = Path(out_dir)
    resume = continues_run(run_dir, resume, progress)
    with run_guard(run_dir, fresh=not resume):
        rules = pinned_rules(run_dir, resume, tokenizer_rules)
        return _train_tagger((train, dev, test), run_dir, model_config, config, tagset, resume, rules, progress)


def _train_tagger(
    data: tuple[TaggedSentences, TaggedSentences, TaggedSentences | None],
    run_dir: Path,
    model_config: TaggerConfig,
    config: TrainConfig,
    tagset: str,
    resume: bool,
    rules: dict[str, Any],
    progress: TrainProgress,
) -> TagTrainResult:
    """``train_tagger``'s run, once ``continues_run`` has said whether it starts at epoch 1 and ``pinned_rules``
    which tokenizer rules it pins."""
    started = time.perf_counter()
    train, dev, test = data
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    state: dict[str, Any] | None = None
    coverage = None
    if resume:
        state = load_state(run_dir)
        saved = _read_config(run_dir)
        check_settings_unedited(run_dir, state.get("run_settings"), saved, _RESUMABLE)
        recorded = saved.train or {}
        changed = sorted(k for k, v in config.to_dict().items() if k not in _RESUMABLE and recorded.get(k) != v)
        if changed:
            raise BundleError(f"Cannot resume {run_dir}: setting(s) {changed} differ from the saved run; use them.")
        labels = list(saved.labels)
        words, chars = Vocab.load(run_dir / VOCAB_FILE), Vocab.load(run_dir / CHAR_VOCAB_FILE)
        try:
            model_config = TaggerConfig.from_dict(saved.model)
        except (TypeError, ValueError) as err:
            raise checkpoint_mismatch(run_dir, err) from err
        sizes = (len(words), len(chars), len(labels))
        if sizes != (model_config.vocab_size, model_config.char_vocab_size, model_config.num_labels):
            raise checkpoint_mismatch(run_dir, ValueError(f"{sizes} words, characters and tags"))
        coverage_info = saved.embedding_coverage
        test_source = test.source if test is not None else None
        check_test_data(
            run_dir, (saved.data or {}).get("test"), test_source, "resume from the data folder that holds it"
        )
    else:
        labels = train.tag_set()
        if len(labels) < 2:
            raise DataError(f"{train.source}: only the tag(s) {labels}; a tagger needs at least two.")
        problem = label_problem(labels)
        if problem:
            raise DataError(f"{train.source}: {problem}; fix the tags in the data.")
        words, chars = _build_vocab(train, config, model_config), build_char_vocab(train.tokens)
        changes: dict[str, Any] = {"vocab_size": len(words), "char_vocab_size": len(chars), "num_labels": len(labels)}
        if config.embeddings:
            progress.on_stage(f"reading vectors from {config.embeddings}")
            coverage = read_vectors(config.embeddings, words, config.seed)
            changes["embedding_dim"] = coverage.dim
            progress.on_stage(f"vectors cover {coverage.found}/{coverage.total} words ({coverage.fraction:.1%})")
        coverage_info = None if coverage is None else {"found": coverage.found, "total": coverage.total}
        model_config = dataclasses.replace(model_config, **changes)

    torch.manual_seed(config.seed)
    model = BiLSTMTagger(model_config)
    init_embedding(model.embedding, coverage, config)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    width = model_config.max_word_chars
    train_enc = TagEncoder(train, words, chars, labels, width)
    dev_enc = TagEncoder(dev, words, chars, labels, width)

    history: list[dict[str, Any]] = []
    best_acc, best_epoch, bad_epochs, start_epoch = -1.0, 0, 0, 1
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:  # shapes that do not fit: an edited config.json
            raise checkpoint_mismatch(run_dir, err) from err
        torch.set_rng_state(state["rng"])
        history = list(state["history"])
        best_acc, best_epoch, bad_epochs = state["best_acc"], state["best_epoch"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        weights_digest = state.get("weights_sha256")  # None in checkpoints from before digests were recorded
    else:
        weights_digest = None
        run_dir.mkdir(parents=True, exist_ok=True)
        words.save(run_dir / VOCAB_FILE)
        chars.save(run_dir / CHAR_VOCAB_FILE)
        # Training reads gold tokens; raw text at serving goes through these rules, pinned now so every bundle
        # exported from this run tokenizes alike, whatever spaCy is installed at export.
        save_rules(rules, run_dir / TOKENIZER_RULES_FILE)
    info: dict[str, Any] = {
        "train_sentences": len(train),
        "train_tokens": train.num_tokens,
        "dev_sentences": len(dev),
        "test_sentences": len(test) if test is not None else 0,
        "vocab_size": len(words),
        "char_vocab_size": len(chars),
        "embedding_coverage": coverage_info,
        "device": str(device),
    }
    run_config = RunConfig(
        task=TAG_TASK,
        model=model_config.to_dict(),
        train=config.to_dict(),
        # Raw text is split by the toolkit's tokenizer with case kept: the character encoder reads the case,
        # the word lookup lowercases (runtime.tagging_encode.word_key).
        tokenizer=TokenizerConfig(lowercase=False),
        labels=labels,
        tagset=tagset,
        embedding_coverage=coverage_info,
        data={"train": train.source, "dev": dev.source, "test": test.source if test is not None else None},
        toolkit_version=__version__,
    )
    atomic_write_json(run_dir / CONFIG_FILE, run_config.to_dict())

    stopped_early = bool(config.patience and bad_epochs >= config.patience)
    for epoch in range(start_epoch, config.epochs + 1):
        if stopped_early:
            break
        epoch_started = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        batches = batch_order(train_enc.lengths, config.batch_size, config.bucket_batches, rng)
        progress.on_epoch_start(epoch, config.epochs, len(batches))
        train_loss, train_acc = _train_epoch(
            model, train_enc, batches, optimizer, config, model_config, device, progress, epoch
        )
        scheduler.step()
        dev_loss, dev_pred = evaluate_tagger(model, dev_enc, config.eval_batch_size, device)
        dev_report = _report(dev_enc, dev_pred, labels)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": dev_loss,
            "val_accuracy": dev_report["accuracy"],
            "val_per_tag": dev_report["per_label"],
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - epoch_started, 2),
        }
        require_finite_record(record, f"epoch {epoch}")
        history.append(record)
        if dev_report["accuracy"] > best_acc:
            best_acc, best_epoch, bad_epochs = dev_report["accuracy"], epoch, 0
            weights_digest = save_weights(run_dir / WEIGHTS_FILE, model)
        else:
            bad_epochs += 1
        stopped_early = bool(config.patience and bad_epochs >= config.patience and epoch < config.epochs)
        save_state(
            run_dir,
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "history": history,
                "best_acc": best_acc,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "weights_sha256": weights_digest,
                "run_settings": settings_record(run_config, _RESUMABLE),
            },
        )
        progress.on_epoch_end(record)

    # The kept weights are tested from the file, which must be the one this run wrote (a resumed run checks the
    # digest its checkpoint recorded): the test metrics are recorded with that digest.
    kept, weights_digest = load_weights(run_dir, weights_digest, f"the checkpoint {state_path(run_dir)}")
    best = BiLSTMTagger(model_config)
    best.load_state_dict(kept)
    best.eval()
    best.to(device)
    test_report = None
    if test is not None:
        test_enc = TagEncoder(test, words, chars, labels, width)
        _, test_pred = evaluate_tagger(best, test_enc, config.eval_batch_size, device)
        test_report = _report(test_enc, test_pred, labels)
        require_finite_record(test_report, "the test set")
    info["total_seconds"] = round(time.perf_counter() - started, 2)
    metrics = RunMetrics(
        history,
        best_epoch,
        stopped_early,
        test_report,
        info,
        total_seconds=info["total_seconds"],
        task=TAG_TASK,
        weights_sha256=weights_digest,
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics.to_dict())
    return TagTrainResult(run_dir, history, best_epoch, test_report, stopped_early, info)


def _train_epoch(
    model: BiLSTMTagger,
    data: TagEncoder,
    batches: list[list[int]],
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    model_config: TaggerConfig,
    device: torch.device,
    progress: TrainProgress,
    epoch: int,
) -> tuple[float, float]:
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for step, rows in enumerate(batches, start=1):
        batch = data.batch(rows)
        ids = batch.ids.to(device)
        if model_config.word_dropout:
            drop = (torch.rand(ids.shape, device=device) < model_config.word_dropout) & (ids != PAD_ID)
            ids = ids.masked_fill(drop, UNK_ID)
        char_ids, lengths, targets = batch.char_ids.to(device), batch.lengths.to(device), batch.targets.to(device)
        # Packed back-propagation is slow on the CPU (trainer/unpacked.py); cuDNN handles packed sequences well.
        forward = model.forward_unpacked if device.type == "cpu" else model.forward
        logits = forward(ids, char_ids, lengths)
        loss = functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if config.clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        valid = targets != IGNORE_INDEX
        n = int(valid.sum())
        hits = int((logits.argmax(dim=2) == targets)[valid].sum())
        value = float(loss.detach())
        require_finite_loss(value, epoch, step)
        total_loss += value * n
        correct += hits
        count += n
        progress.on_batch(value, hits / max(n, 1))
    return total_loss / max(count, 1), correct / max(count, 1)


def _read_config(run_dir: Path) -> RunConfig:
    from lstm_onnx.trainer.tag_run import read_tag_config

    return read_tag_config(run_dir)
