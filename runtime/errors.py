"""The project's exception hierarchy: every expected failure is a ``ToolkitError``.

The CLI catches ``ToolkitError`` only, prints its one-line message to stderr and exits 1.
Errors caused by a bad value also subclass ``ValueError`` so library users can catch them naturally.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ConfigError",
    "DataError",
    "EmptyInputError",
    "ExportError",
    "InputError",
    "InputTooLongError",
    "LabelError",
    "MissingDependencyError",
    "NonFiniteOutputError",
    "ORT_MISSING",
    "ParityError",
    "ProviderError",
    "ToolkitError",
    "TrainingError",
    "WorkerLostError",
    "WriteError",
]


class ToolkitError(Exception):
    """Base class of every error lstm-onnx raises on purpose."""


class DataError(ToolkitError, ValueError):
    """A data file or directory is missing, malformed or holds unexpected labels."""


class ConfigError(ToolkitError, ValueError):
    """A setting (model, training, export or tokenizer configuration) has an invalid value."""


class BundleError(ToolkitError):
    """A model bundle or run directory is missing files, corrupt, or does not match its manifest."""


class InputError(ToolkitError, ValueError):
    """A text given for prediction breaks the input rules.

    Args:
        message: What failed, the offending value, and the fix.
        position: 0-based position of the offending text in the input, when known.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class EmptyInputError(InputError):
    """A text is empty or whitespace-only after normalisation."""


class InputTooLongError(InputError):
    """A text is longer than the configured limit and truncation was not requested."""


class NonFiniteOutputError(InputError):
    """The model produced inf or NaN logits for a text: never reported as a score."""


class LabelError(ToolkitError, ValueError):
    """New label names do not fit the bundle: unknown old label, duplicate or empty name, wrong count."""


class ExportError(ToolkitError):
    """Export to ONNX failed or produced an invalid graph."""


class ParityError(ToolkitError):
    """ONNX outputs differ from PyTorch beyond the stated tolerances."""


class ProviderError(ToolkitError):
    """An execution provider was requested that cannot be used here."""


class WorkerLostError(ToolkitError):
    """A process scoring part of the input died (killed, e.g. by the out-of-memory killer) before it answered."""


class TrainingError(ToolkitError):
    """Training cannot go on: the loss or a recorded metric stopped being a finite number (the model diverged)."""


class WriteError(ToolkitError):
    """An output could not be written (a full disk, a read-only file system, no permission, no such folder);
    nothing half-written is left in its place."""


class MissingDependencyError(ToolkitError, ImportError):
    """An optional dependency is not installed; the message carries the install command."""


# The base install carries no ONNX Runtime build: the user picks one with an extra.
ORT_MISSING = (
    "ONNX Runtime is not installed. Install one build: pip install 'lstm-onnx[cpu]' (CPU) "
    "or pip install 'lstm-onnx[gpu]' (CUDA + CPU), never both."
)
