"""export_tagger_bundles: a tagging run → verified fp32 (and int8/fp16/optimized) bundles with ``"task": "tag"``.

A tagging bundle holds the classifier's files plus ``chars.txt``; its manifest's ``io`` block is
``TAG_IO.to_manifest(C)``. Every bundle is written into a temporary directory and renamed into place.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lstm_onnx.exporter.build import CRITERIA
from lstm_onnx.exporter.bundle_writer import (
    make_parent,
    new_manifest,
    recover_target,
    staged_bundle,
    with_weights,
    write_tokenizer_rules,
)
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.export import ExportInfo
from lstm_onnx.exporter.tagger_export import export_tagger_onnx
from lstm_onnx.exporter.tagger_parity import TagParity, judge, measure_tag_parity
from lstm_onnx.exporter.variants import Variant, make_variant
from lstm_onnx.runtime.atomic import check_target, writing
from lstm_onnx.runtime.bundle_format import BundleConfig, seal_manifest, write_json
from lstm_onnx.runtime.card import weights_line
from lstm_onnx.runtime.contract import (
    BUNDLE_CONFIG_FILE,
    CHAR_VOCAB_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    TAG_IO,
    TOKENIZER_RULES_FILE,
    VOCAB_FILE,
)
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.trainer.tag_run import LoadedTagRun, load_tag_run

__all__ = ["TAG_BUNDLE_NAME", "TagBundle", "export_tagger_bundles"]

TAG_BUNDLE_NAME = "pos-bilstm"


@dataclass(frozen=True)
class TagBundle:
    """One written tagging bundle and its parity measurement."""

    variant: Variant
    path: Path
    parity: TagParity


def export_tagger_bundles(config: ExportConfig) -> list[TagBundle]:
    """Export a tagging run: fp32 first, then each requested variant; each is verified before it is written.

    Raises:
        BundleError: A target exists without ``force``, or the run is broken.
        ExportError: Export or a variant conversion failed.
        ParityError: A graph failed its parity check (nothing is written for it).
        DataError: ``config.data`` could not be read.
        WriteError: A bundle could not be written (full disk, read-only file system, ...).
    """
    variants = (Variant.FP32, *config.variants)
    for variant in variants:
        recover_target(config.variant_dir(variant))
        check_target(config.variant_dir(variant), config.force, protect=config.run_dir)
    run = load_tag_run(config.run_dir)
    data = None
    if config.data is not None:
        data = read_tagged(config.data, "test", run.config.tagset or "upos")
        data = data.head(config.limit) if config.limit is not None else data
    built = []
    make_parent(config.out)
    # As export_bundles: a failed write is one line, and the work and staging directories are removed on the way out.
    with (
        writing(config.out),
        tempfile.TemporaryDirectory(dir=config.out.parent, prefix=f".{config.out.name}.work.") as work,
    ):
        fp32_path = Path(work) / MODEL_FILE
        info = export_tagger_onnx(run.model, fp32_path, opset=config.opset, seed=config.seed)
        for variant in variants:
            model_path = fp32_path
            if variant is not Variant.FP32:
                model_path = Path(work) / f"model-{variant.value}.onnx"
                make_variant(variant, fp32_path, model_path)
            parity = measure_tag_parity(
                model_path, run, variant.value, CRITERIA[variant], data, config.batch_size, config.seed, config.threads
            )
            judge(parity, CRITERIA[variant])
            path = _write(config.variant_dir(variant), model_path, run, config, info, variant, parity)
            built.append(TagBundle(variant, path, parity))
    return built


def _card(run: LoadedTagRun, variant: Variant, parity: TagParity) -> str:
    cfg = run.model_config
    test = (run.metrics.test if run.metrics else None) or {}
    data = run.config.data or {}
    lines = [
        f"# {TAG_BUNDLE_NAME} ({variant.value})",
        "",
        f"BiLSTM part-of-speech tagger ({(run.config.tagset or 'upos').upper()}, {len(run.labels)} tags): word "
        f"embedding {cfg.embedding_dim} + character CNN {cfg.char_filters}, BiLSTM hidden {cfg.hidden_size} x "
        f"{cfg.num_layers} layer(s), per-token linear head; {cfg.vocab_size} words, {cfg.char_vocab_size} characters.",
        "",
        "## Data and metrics",
        f"Trained on {data.get('train')} (dev {data.get('dev')}); test set {data.get('test')}: token accuracy "
        + (f"{test['accuracy']:.4f} over {test.get('tokens')} words (PyTorch)." if test else "not measured.")
        + (f" {weights_line(run.weights_sha256)}" if test and run.weights_sha256 else ""),
        "",
        "## Parity with PyTorch (valid positions only)",
        f"max |Δlogit| {parity.max_abs_diff:.2g}, tag agreement {parity.tag_agreement:.4f} "
        f"over {parity.tokens} tokens, "
        f"padding invariance {parity.padding_max_diff:.2g}"
        + (f"; accuracy {parity.accuracy:.4f} (PyTorch {parity.torch_accuracy:.4f})." if parity.accuracy else "."),
        "",
        "## Limits",
        "- English; raw text is split by spaCy's English rules (tokenizer.json), which differ from UD tokenization in "
        "places; `tag_tokens` with gold tokens is what the accuracy above measures.",
        f"- Tokens longer than {cfg.max_word_chars} characters are read by their first and last "
        f"{cfg.max_word_chars // 2}.",
    ]
    return "\n".join(lines) + "\n"


def _write(
    out: Path,
    model_path: Path,
    run: LoadedTagRun,
    config: ExportConfig,
    info: ExportInfo,
    variant: Variant,
    parity: TagParity,
) -> Path:
    check_target(out, config.force, protect=config.run_dir)
    with staged_bundle(out) as staging:
        shutil.copyfile(model_path, staging / MODEL_FILE)
        shutil.copyfile(config.run_dir / VOCAB_FILE, staging / VOCAB_FILE)
        shutil.copyfile(config.run_dir / CHAR_VOCAB_FILE, staging / CHAR_VOCAB_FILE)
        bundle_config = BundleConfig(
            task=TAG_IO.task,
            labels=list(run.labels),
            tagset=run.config.tagset or "upos",
            tokenizer=run.tokenizer_config,
            model=run.model_config.to_dict(),
            vocab_size=len(run.vocab),
            variant=variant.value,
        )
        write_json(staging / BUNDLE_CONFIG_FILE, bundle_config.to_dict())
        write_tokenizer_rules(config.run_dir, staging / TOKENIZER_RULES_FILE)
        (staging / MODEL_CARD_FILE).write_text(_card(run, variant, parity), encoding="utf-8")
        metrics: dict[str, Any] = {"run_test": run.metrics.test if run.metrics else None}
        if parity.accuracy is not None:
            metrics["verify_data"] = {"accuracy": parity.accuracy, "torch_accuracy": parity.torch_accuracy}
        io = TAG_IO.to_manifest(len(run.labels))
        manifest = new_manifest(TAG_BUNDLE_NAME, config.version, info, variant.value, io)
        export = with_weights(manifest.export, run.weights_sha256)
        seal_manifest(staging, replace(manifest, export=export, parity=parity.summary(), metrics=metrics))
    return out
