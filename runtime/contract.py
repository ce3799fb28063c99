"""The IO contract shared by exporter and runtime: tensor names, axis names, bundle file names.

Each constant has exactly one home, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BATCH_AXIS",
    "CHAR_VOCAB_FILE",
    "CHAR_IDS",
    "CLASSIFY_IO",
    "IO_SPECS",
    "IOSpec",
    "LABELS_AXIS",
    "TAG_IO",
    "TensorSpec",
    "WORD_AXIS",
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
# Characters per token (the tagger's character encoder): dynamic too, so a long word is never cut.
WORD_AXIS = "word_length"
# The number of labels: fixed by the model, written as this name in specs and as the integer in a bundle's manifest.
LABELS_AXIS = "num_labels"
# The tagger's character ids: int64 (B, T, W), 0 = padding.
CHAR_IDS = "char_ids"

# Files of a model bundle (and, for vocab/config, of a training run directory).
MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.txt"
BUNDLE_CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
MODEL_CARD_FILE = "README.md"
TOKENIZER_RULES_FILE = "tokenizer.json"
# A tagging bundle's character vocabulary (one character per line; line number = id).
CHAR_VOCAB_FILE = "chars.txt"

# Bumped whenever a bundle written by a newer toolkit could not be read by an older one.
BUNDLE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name, element type, and axes (names of dynamic axes, or fixed sizes).

    Attributes:
        name: Tensor name in the ONNX graph.
        dtype: ``"int64"`` or ``"float32"``.
        dims: Axis names (dynamic, or ``LABELS_AXIS`` for the label count) or fixed sizes.
    """

    name: str
    dtype: str
    dims: tuple[str | int, ...]

    def resolved(self, num_labels: int) -> tuple[str | int, ...]:
        """The axes with ``LABELS_AXIS`` replaced by the model's label count."""
        return tuple(num_labels if d == LABELS_AXIS else d for d in self.dims)


@dataclass(frozen=True)
class IOSpec:
    """The ONNX IO contract of one task, written once: export, graph check, bundle writer and runtime derive from it.

    Attributes:
        task: ``"classify"`` or ``"tag"``.
        inputs: Graph inputs, in the order the graph takes them.
        outputs: Graph outputs.
    """

    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        """Input names in graph order."""
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Output names in graph order."""
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Dynamic axes in ``torch.onnx.export``'s format: ``{tensor: {axis index: axis name}}``."""
        return {
            t.name: {i: d for i, d in enumerate(t.dims) if isinstance(d, str) and d != LABELS_AXIS}
            for t in (*self.inputs, *self.outputs)
        }

    def to_manifest(self, num_labels: int) -> dict[str, Any]:
        """The manifest's ``io`` block: ``{task, inputs: [{name, dtype, shape}], outputs: [...]}``."""

        def row(t: TensorSpec) -> dict[str, Any]:
            return {"name": t.name, "dtype": t.dtype, "shape": list(t.resolved(num_labels))}

        return {"task": self.task, "inputs": [row(t) for t in self.inputs], "outputs": [row(t) for t in self.outputs]}


# Text classification: input_ids int64 (B, T), lengths int64 (B) -> logits float32 (B, C).
CLASSIFY_IO = IOSpec(
    "classify",
    inputs=(
        TensorSpec(INPUT_IDS, "int64", (BATCH_AXIS, SEQUENCE_AXIS)),
        TensorSpec(LENGTHS, "int64", (BATCH_AXIS,)),
    ),
    outputs=(TensorSpec(LOGITS, "float32", (BATCH_AXIS, LABELS_AXIS)),),
)
# Token tagging: input_ids int64 (B, T), char_ids int64 (B, T, W), lengths int64 (B) -> logits float32 (B, T, C);
# positions at or past a sentence's length are padding and never read.
TAG_IO = IOSpec(
    "tag",
    inputs=(
        TensorSpec(INPUT_IDS, "int64", (BATCH_AXIS, SEQUENCE_AXIS)),
        TensorSpec(CHAR_IDS, "int64", (BATCH_AXIS, SEQUENCE_AXIS, WORD_AXIS)),
        TensorSpec(LENGTHS, "int64", (BATCH_AXIS,)),
    ),
    outputs=(TensorSpec(LOGITS, "float32", (BATCH_AXIS, SEQUENCE_AXIS, LABELS_AXIS)),),
)
IO_SPECS = {spec.task: spec for spec in (CLASSIFY_IO, TAG_IO)}
