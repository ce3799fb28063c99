"""A training run directory: everything later steps (export, verify, predict) need.

Layout::

    RUN_DIR/
      config.json        trainer.run_format.RunConfig: {"model": ModelConfig, "train": TrainConfig,
                          "tokenizer": TokenizerConfig, "labels": [...in id order], "data": {...},
                          "toolkit_version": str}
      vocab.txt          one token per line, line number = id
      tokenizer.json     the tokenizer rules training used (runtime.tokenizer_rules); bundles copy this file
      model.safetensors  final (best on validation) weights
      metrics.json       trainer.run_format.RunMetrics: validation history and test metrics
      curves.png         training curves
      checkpoint/        per-epoch resume state (trainer.train)

Weights are safetensors: loading never executes pickled code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from lstm_onnx.runtime.contract import MANIFEST_FILE, TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import dump_json
from lstm_onnx.runtime.tokenizer import TokenizerConfig, Vocab
from lstm_onnx.runtime.tokenizer_rules import load_rules
from lstm_onnx.trainer.config import ModelConfig
from lstm_onnx.trainer.model import BiLSTMClassifier
from lstm_onnx.trainer.run_format import (
    CONFIG_FILE,
    METRICS_FILE,
    RunConfig,
    RunMetrics,
    read_run_config,
    read_run_metrics,
)

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "WEIGHTS_FILE",
    "LoadedRun",
    "atomic_write_bytes",
    "atomic_write_json",
    "load_run",
    "load_weights",
    "read_weights",
    "save_weights",
]

WEIGHTS_FILE = "model.safetensors"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp creates 0600; run files are meant to be shared
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Write pretty JSON atomically (never NaN or Infinity: ``runtime.json_text.dump_json``)."""
    atomic_write_bytes(path, (dump_json(data) + "\n").encode("utf-8"))


def save_weights(path: Path, model: torch.nn.Module) -> str:
    """Save a state dict as safetensors, atomically and readable like every other run file (0644).

    Returns:
        The sha256 of the bytes written: the run's ``metrics.json`` records it (``RunMetrics.weights_sha256``).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save(state)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_weights(run_dir: Path, recorded: str | None, recorded_in: str) -> tuple[dict[str, torch.Tensor], str]:
    """A run's ``model.safetensors``, checked against the sha256 training recorded when it wrote the file.

    The bytes are read once, then hashed and parsed, so what is checked is what is loaded.

    Args:
        run_dir: The run directory (classifier or tagger).
        recorded: The digest training recorded (``None``: nothing to check, a run from before digests).
        recorded_in: Where it is recorded, for the message (``metrics.json``'s path, or the checkpoint's).

    Returns:
        ``(state dict, sha256 of the file)``.

    Raises:
        BundleError: The file is missing, not safetensors, or not the file this run trained (another run's weights
            copied in): the run's metrics would describe another model.
    """
    path = Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise BundleError(f"{path} is missing; the run did not finish. Resume it with --resume.")
    try:
        data = path.read_bytes()
        state = load(data)
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{path} is not a valid safetensors file ({err}); train the run again.") from err
    digest = hashlib.sha256(data).hexdigest()
    if recorded is not None and recorded != digest:
        raise BundleError(
            f"{path} (sha256 {digest[:12]}…) is not the file this run trained: {recorded_in} records sha256 "
            f"{recorded[:12]}…. The weights were replaced (another run's model.safetensors?), so the run's metrics "
            "would describe another model; put this run's own weights back, or train again."
        )
    return state, digest


def read_weights(run_dir: Path, metrics: RunMetrics | None) -> tuple[dict[str, torch.Tensor], str]:
    """A finished run's weights, checked against the digest its ``metrics.json`` records (``load_weights``).

    A run trained before digests were recorded has none to check; a warning says so when its ``metrics.json`` holds
    test metrics that the weights cannot be tied to.

    Raises:
        BundleError: As ``load_weights``.
    """
    recorded = metrics.weights_sha256 if metrics is not None else None
    if recorded is None and metrics is not None and metrics.test is not None:
        warnings.warn(
            f"{Path(run_dir) / METRICS_FILE} records no weights digest (trained before lstm-onnx recorded one): its "
            f"test metrics cannot be checked to belong to {Path(run_dir) / WEIGHTS_FILE}. Retrain the run to tie "
            "them together.",
            UserWarning,
            stacklevel=3,
        )
    return load_weights(run_dir, recorded, str(Path(run_dir) / METRICS_FILE))


@dataclass
class LoadedRun:
    """A trained model and what it needs to run, read back from a run directory."""

    model: BiLSTMClassifier
    model_config: ModelConfig
    tokenizer_config: TokenizerConfig
    vocab: Vocab
    labels: list[str]
    config: RunConfig
    metrics: RunMetrics | None
    # None for runs made before the rules were pinned at training (the exporter then re-dumps them, with a warning).
    tokenizer_rules: dict[str, Any] | None = None
    # sha256 of model.safetensors as loaded (checked against metrics.json's record); bundles record it.
    weights_sha256: str | None = None


def load_run(run_dir: Path) -> LoadedRun:
    """Load a run directory's model (eval mode, CPU) and settings.

    Raises:
        BundleError: A file is missing, corrupt, the weights do not match the config, or they are not the weights the
            run trained (their digest differs from the one ``metrics.json`` recorded); names the file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BundleError(f"Run directory {run_dir} does not exist; train one with `lstm-onnx train`.")
    if (run_dir / MANIFEST_FILE).is_file():
        raise BundleError(
            f"{run_dir} is a model bundle (it has {MANIFEST_FILE}), not a training run directory; "
            "pass the run directory it was exported from (the --out of `lstm-onnx train`)."
        )
    config_path = run_dir / CONFIG_FILE
    config = read_run_config(run_dir)
    try:
        model_config = ModelConfig.from_dict(config.model)
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{config_path} is not a valid run config ({err}); train the run again.") from err
    tokenizer_config, labels = config.tokenizer, config.labels
    vocab = Vocab.load(run_dir / VOCAB_FILE)
    if len(vocab) != model_config.vocab_size:
        raise BundleError(
            f"{run_dir / VOCAB_FILE} has {len(vocab)} tokens but the model expects {model_config.vocab_size}; "
            "the run directory mixes files from different runs."
        )
    if len(labels) != model_config.num_labels:
        raise BundleError(f"{config_path} lists {len(labels)} labels but the model has {model_config.num_labels}.")
    weights_path = run_dir / WEIGHTS_FILE
    metrics = read_run_metrics(run_dir)
    state, digest = read_weights(run_dir, metrics)
    model = BiLSTMClassifier(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise BundleError(f"{weights_path} does not match {config_path}: {first}") from err
    model.eval()
    rules_path = run_dir / TOKENIZER_RULES_FILE
    rules = load_rules(rules_path) if rules_path.is_file() else None
    return LoadedRun(model, model_config, tokenizer_config, vocab, labels, config, metrics, rules, digest)
