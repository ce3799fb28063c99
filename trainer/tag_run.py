"""A tagging run directory read back: the trained ``BiLSTMTagger`` and what it needs to run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from lstm_onnx.runtime.contract import CHAR_VOCAB_FILE, MANIFEST_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer import TokenizerConfig, Vocab
from lstm_onnx.trainer.run_dir import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE
from lstm_onnx.trainer.tag_config import TaggerConfig
from lstm_onnx.trainer.tagger_model import BiLSTMTagger

__all__ = ["LoadedTagRun", "load_tag_run", "read_tag_config", "run_task"]


def run_task(run_dir: Path) -> str:
    """The task a run directory was trained for: ``"tag"``, or ``"classify"`` (runs without a ``task`` key)."""
    try:
        config = json.loads((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "classify"  # load_run reports what is wrong with it
    task = config.get("task", "classify") if isinstance(config, dict) else "classify"
    return str(task)


def read_tag_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.json``.

    Raises:
        BundleError: Missing or not a tagging run config.
    """
    path = Path(run_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BundleError(f"{path} is missing; is {run_dir} a training run directory?") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON ({err}); train the run again.") from err
    if not isinstance(config, dict) or config.get("task") != "tag":
        raise BundleError(f'{path} is not a tagging run\'s config (no "task": "tag").')
    return config


@dataclass
class LoadedTagRun:
    """A trained tagger (eval mode, CPU) and its settings."""

    model: BiLSTMTagger
    model_config: TaggerConfig
    tokenizer_config: TokenizerConfig
    vocab: Vocab
    chars: Vocab
    labels: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any] | None


def load_tag_run(run_dir: Path) -> LoadedTagRun:
    """Load a tagging run directory.

    Raises:
        BundleError: A file is missing, corrupt, or the files disagree; names the file.
    """
    run_dir = Path(run_dir)
    if (run_dir / MANIFEST_FILE).is_file():
        raise BundleError(f"{run_dir} is a model bundle, not a training run directory; pass the run directory.")
    config = read_tag_config(run_dir)
    try:
        model_config = TaggerConfig.from_dict(config["model"])
        tokenizer_config = TokenizerConfig.from_dict(config["tokenizer"])
        labels = [str(label) for label in config["labels"]]
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{run_dir / CONFIG_FILE} is not a valid tagging run config ({err}).") from err
    vocab, chars = Vocab.load(run_dir / VOCAB_FILE), Vocab.load(run_dir / CHAR_VOCAB_FILE)
    for path, size, want in (
        (VOCAB_FILE, len(vocab), model_config.vocab_size),
        (CHAR_VOCAB_FILE, len(chars), model_config.char_vocab_size),
        (CONFIG_FILE + " labels", len(labels), model_config.num_labels),
    ):
        if size != want:
            raise BundleError(f"{run_dir / path} has {size} entries but the model expects {want}; mixed runs.")
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{weights} is missing; the run did not finish. Resume it with --resume.")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{weights} is not a valid safetensors file ({err}); train the run again.") from err
    model = BiLSTMTagger(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BundleError(f"{weights} does not match {run_dir / CONFIG_FILE}: {str(err).splitlines()[0]}") from err
    model.eval()
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else None
    return LoadedTagRun(model, model_config, tokenizer_config, vocab, chars, labels, config, metrics)
