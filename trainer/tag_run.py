"""A tagging run directory read back: the trained ``BiLSTMTagger`` and what it needs to run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lstm_onnx.runtime.contract import CHAR_VOCAB_FILE, MANIFEST_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer import TokenizerConfig, Vocab
from lstm_onnx.trainer.run_dir import WEIGHTS_FILE, read_weights
from lstm_onnx.trainer.run_format import CONFIG_FILE, RunConfig, RunMetrics, read_run_config, read_run_metrics
from lstm_onnx.trainer.tag_config import TaggerConfig
from lstm_onnx.trainer.tagger_model import BiLSTMTagger

__all__ = ["LoadedTagRun", "load_tag_run", "read_tag_config", "run_task"]


def run_task(run_dir: Path) -> str:
    """The task a run directory was trained for: ``"tag"``, or ``"classify"`` (runs without a ``task`` key)."""
    try:
        config = read_run_config(run_dir)
    except BundleError:
        return "classify"  # load_run reports what is wrong with it
    return config.task or "classify"


def read_tag_config(run_dir: Path) -> RunConfig:
    """The run's ``config.json``.

    Raises:
        BundleError: Missing, malformed, or not a tagging run config.
    """
    config = read_run_config(run_dir)
    if not config.is_tagging:
        raise BundleError(f'{Path(run_dir) / CONFIG_FILE} is not a tagging run\'s config (no "task": "tag").')
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
    config: RunConfig
    metrics: RunMetrics | None
    # sha256 of model.safetensors as loaded (checked against metrics.json's record); bundles record it.
    weights_sha256: str | None = None


def load_tag_run(run_dir: Path) -> LoadedTagRun:
    """Load a tagging run directory.

    Raises:
        BundleError: A file is missing, corrupt, or the files disagree (the weights not the ones the run trained, too);
            names the file.
    """
    run_dir = Path(run_dir)
    if (run_dir / MANIFEST_FILE).is_file():
        raise BundleError(f"{run_dir} is a model bundle, not a training run directory; pass the run directory.")
    config = read_tag_config(run_dir)
    try:
        model_config = TaggerConfig.from_dict(config.model)
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{run_dir / CONFIG_FILE} is not a valid tagging run config ({err}).") from err
    tokenizer_config, labels = config.tokenizer, config.labels
    vocab, chars = Vocab.load(run_dir / VOCAB_FILE), Vocab.load(run_dir / CHAR_VOCAB_FILE)
    for path, size, want in (
        (VOCAB_FILE, len(vocab), model_config.vocab_size),
        (CHAR_VOCAB_FILE, len(chars), model_config.char_vocab_size),
        (CONFIG_FILE + " labels", len(labels), model_config.num_labels),
    ):
        if size != want:
            raise BundleError(f"{run_dir / path} has {size} entries but the model expects {want}; mixed runs.")
    weights = run_dir / WEIGHTS_FILE
    metrics = read_run_metrics(run_dir)
    state, digest = read_weights(run_dir, metrics)
    model = BiLSTMTagger(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BundleError(f"{weights} does not match {run_dir / CONFIG_FILE}: {str(err).splitlines()[0]}") from err
    model.eval()
    return LoadedTagRun(model, model_config, tokenizer_config, vocab, chars, labels, config, metrics, digest)
