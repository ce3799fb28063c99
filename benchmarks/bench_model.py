"""Build the benchmark model: the tutorials' 2-layer, 256-hidden BiLSTM (``gpu`` preset shape), random weights.

Speed does not depend on the weights, so no training: the vocabulary comes from IMDB training reviews (so real
reviews hit real ids), the weights are seeded random, and the run directory is exported (with an optimized and
an int8 variant) through the exporter's own ``export_bundles``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from lstm_onnx import __version__
from lstm_onnx.exporter.build import export_bundles
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.variants import Variant
from lstm_onnx.runtime.contract import VOCAB_FILE
from lstm_onnx.runtime.datasets import read_dataset
from lstm_onnx.runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab
from lstm_onnx.trainer.model import BiLSTMClassifier
from lstm_onnx.trainer.presets import get_preset
from lstm_onnx.trainer.run_dir import CONFIG_FILE, WEIGHTS_FILE, atomic_write_json, save_weights

__all__ = ["VOCAB_TEXTS", "VOCAB_SIZE", "make_bench_bundles"]

VOCAB_TEXTS = 5000
VOCAB_SIZE = 25_000


def make_bench_run(data: Path, run_dir: Path, seed: int = 0, embedding_dim: int | None = None) -> Path:
    """Write a run directory: vocabulary from ``VOCAB_TEXTS`` IMDB training reviews, ``gpu``-preset model
    (``embedding_dim`` replaces the preset's 50 when given)."""
    texts = read_dataset(data, split="train").texts[::5][:VOCAB_TEXTS]
    tokenizer_config = TokenizerConfig()
    tokenizer = Tokenizer(tokenizer_config)
    vocab = Vocab.build(tokenizer.pipe(texts), min_freq=2, max_size=VOCAB_SIZE)
    preset = get_preset("gpu", seed=seed)
    model_config = dataclasses.replace(preset.model, vocab_size=len(vocab), num_labels=2)
    if embedding_dim is not None:
        model_config = dataclasses.replace(model_config, embedding_dim=embedding_dim)
    torch.manual_seed(seed)
    model = BiLSTMClassifier(model_config).eval()
    run_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(run_dir / VOCAB_FILE)
    save_weights(run_dir / WEIGHTS_FILE, model)
    atomic_write_json(
        run_dir / CONFIG_FILE,
        {
            "model": model_config.to_dict(),
            "train": preset.train.to_dict(),
            "tokenizer": tokenizer_config.to_dict(),
            "labels": ["neg", "pos"],
            "toolkit_version": __version__,
        },
    )
    return run_dir


def make_bench_bundles(
    data: Path, work: Path, seed: int = 0, embedding_dim: int | None = None
) -> tuple[Path, dict[str, Path]]:
    """Run directory and bundles (fp32, optimized, int8) under ``work``; reused when already there.

    Returns:
        ``(run_dir, {"fp32": path, "optimized": path, "int8": path})``.
    """
    run_dir = work / "run"
    if not (run_dir / WEIGHTS_FILE).is_file():
        make_bench_run(data, run_dir, seed, embedding_dim)
    config = ExportConfig(run_dir=run_dir, out=work / "bundle", variants=(Variant.OPTIMIZED, Variant.INT8), force=True)
    paths = {v.value: config.variant_dir(v) for v in (Variant.FP32, *config.variants)}
    if not all((p / "manifest.json").is_file() for p in paths.values()):
        export_bundles(config)
    return run_dir, paths
