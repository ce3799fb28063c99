"""ExportConfig: everything one `lstm-onnx export` run needs (no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lstm_onnx.exporter.variants import Variant
from lstm_onnx.runtime.errors import ConfigError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_THREADS, check_range

__all__ = ["BUNDLE_NAME", "ExportConfig"]

BUNDLE_NAME = "sentiment-bilstm"


@dataclass(frozen=True)
class ExportConfig:
    """Settings of one export.

    Attributes:
        run_dir: Training run directory (``load_run``).
        out: The fp32 bundle directory. Variants go beside it as ``<out>-optimized``, ``<out>-int8``, ``<out>-fp16``.
        opset: ONNX opset.
        variants: Derived bundles to write besides fp32.
        force: Replace existing bundles.
        data: Labelled data (its test split) for parity on real texts and accuracy; ``None``: generated cases only.
        limit: Use at most this many texts of ``data`` (stratified, seeded).
        text_field: CSV column / JSON key of the text in ``data`` (``read_dataset``'s default when ``None``).
        label_field: CSV column / JSON key of the label in ``data`` (``read_dataset``'s default when ``None``).
        batch_size: Texts per length bucket when verifying ``data``.
        seed: Seeds the example input, generated cases and ``limit`` sampling.
        threads: ORT intra-op threads for verification.
        version: Semantic version written to the manifest.
    """

    run_dir: Path
    out: Path
    opset: int = 17
    variants: tuple[Variant, ...] = ()
    force: bool = False
    data: Path | None = None
    limit: int | None = None
    text_field: str | None = None
    label_field: str | None = None
    batch_size: int = 64
    seed: int = 0
    threads: int = 1
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}.")
        check_range("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        check_range("threads", self.threads, 1, MAX_THREADS)
        if Variant.FP32 in self.variants:
            raise ConfigError("fp32 is always written; variants are derived from it (optimized, int8, fp16).")
        parts = self.version.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ConfigError(f"version must be semver MAJOR.MINOR.PATCH, got {self.version!r}.")

    def variant_dir(self, variant: Variant) -> Path:
        """Where ``variant``'s bundle goes: ``out`` for fp32, else ``<out>-<variant>`` beside it."""
        if variant is Variant.FP32:
            return self.out
        return self.out.with_name(f"{self.out.name}-{variant.value}")
