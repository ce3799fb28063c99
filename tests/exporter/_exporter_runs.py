"""Build small run directories in code (seeded random weights) for exporter tests that need odd shapes."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lstm_onnx.runtime.contract import TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.tokenizer import PAD, UNK, TokenizerConfig, Vocab
from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, save_rules
from lstm_onnx.trainer.config import ModelConfig
from lstm_onnx.trainer.model import BiLSTMClassifier
from lstm_onnx.trainer.run_dir import CONFIG_FILE, WEIGHTS_FILE, save_weights

WORDS = ["the", "movie", "was", "great", "awful", "plot", "and", "a", "fun", "dull", ".", "it"]


def make_run_dir(path: Path, seed: int = 0, rules: bool = True, **model_kwargs: object) -> Path:
    """A run directory holding a seeded random ``BiLSTMClassifier`` (vocab of 14, E = H = 8 unless overridden),
    with the installed spaCy's tokenizer rules pinned as training pins them (``rules=False``: an older run without)."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = Vocab([PAD, UNK, *WORDS])
    settings = {"embedding_dim": 8, "hidden_size": 8, "dropout": 0.0, **model_kwargs}
    config = ModelConfig(vocab_size=len(vocab), num_labels=2, **settings)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    model = BiLSTMClassifier(config).eval()
    vocab.save(path / VOCAB_FILE)
    save_weights(path / WEIGHTS_FILE, model)
    run_config = {
        "model": config.to_dict(),
        "tokenizer": TokenizerConfig().to_dict(),
        "labels": ["neg", "pos"],
        "toolkit_version": "0.1.0",
    }
    (path / CONFIG_FILE).write_text(json.dumps(run_config), encoding="utf-8")
    if rules:
        save_rules(dump_spacy_rules(), path / TOKENIZER_RULES_FILE)
    return path
