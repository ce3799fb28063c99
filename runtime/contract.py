"""The IO contract shared by exporter and runtime: tensor names, axis names, bundle file names.

Each constant has exactly one home, here.
"""

from __future__ import annotations

__all__ = [
    "BATCH_AXIS",
    "BUNDLE_CONFIG_FILE",
    "BUNDLE_FORMAT_VERSION",
    "INPUT_IDS",
    "LENGTHS",
    "LOGITS",
    "MANIFEST_FILE",
    "MODEL_CARD_FILE",
    "MODEL_FILE",
    "SEQUENCE_AXIS",
    "TOKENIZER_RULES_FILE",
    "VOCAB_FILE",
]

# Graph inputs and outputs. input_ids: int64 (B, T); lengths: int64 (B); logits: float32 (B, C).
INPUT_IDS = "input_ids"
LENGTHS = "lengths"
LOGITS = "logits"

# Dynamic axis names.
BATCH_AXIS = "batch_size"
SEQUENCE_AXIS = "sequence_length"

# Files of a model bundle (and, for vocab/config, of a training run directory).
MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.txt"
BUNDLE_CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
MODEL_CARD_FILE = "README.md"
TOKENIZER_RULES_FILE = "tokenizer.json"

# Bumped whenever a bundle written by a newer toolkit could not be read by an older one.
BUNDLE_FORMAT_VERSION = 1
