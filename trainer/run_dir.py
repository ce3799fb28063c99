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

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

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


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """Save a state dict as safetensors, atomically and readable like every other run file (0644)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state))


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


def load_run(run_dir: Path) -> LoadedRun:
    """Load a run directory's model (eval mode, CPU) and settings.

    Raises:
        BundleError: A file is missing, corrupt, or the weights do not match the config; names the file.
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
    if not weights_path.is_file():
        raise BundleError(f"{weights_path} is missing; the run did not finish. Resume it with --resume.")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{weights_path} is not a valid safetensors file ({err}); train the run again.") from err
    model = BiLSTMClassifier(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise BundleError(f"{weights_path} does not match {config_path}: {first}") from err
    model.eval()
    metrics = read_run_metrics(run_dir)
    rules_path = run_dir / TOKENIZER_RULES_FILE
    rules = load_rules(rules_path) if rules_path.is_file() else None
    return LoadedRun(model, model_config, tokenizer_config, vocab, labels, config, metrics, rules)
