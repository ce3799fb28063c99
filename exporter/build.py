"""export_bundles / verify_bundle: the two library entry points behind `lstm-onnx export` and `lstm-onnx verify`."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstm_onnx.exporter.bundle_writer import make_parent, recover_target, write_bundle
from lstm_onnx.exporter.config import ExportConfig
from lstm_onnx.exporter.export import export_onnx
from lstm_onnx.exporter.tolerances import FP16, FP32, INT8, Criteria
from lstm_onnx.exporter.variants import Variant, make_variant
from lstm_onnx.exporter.verify import ParityReport, Progress, verify_parity
from lstm_onnx.runtime.atomic import check_target, writing
from lstm_onnx.runtime.bundle_format import Manifest
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, MANIFEST_FILE, MODEL_FILE, TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.datasets import LabelledTexts, read_dataset, stratified_sample
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import MAX_JSON_FILE_BYTES, parse_json, read_text_capped
from lstm_onnx.runtime.tokenizer import Tokenizer, TokenizerConfig, Vocab
from lstm_onnx.runtime.tokenizer_rules import load_rules
from lstm_onnx.trainer.run_dir import WEIGHTS_FILE, LoadedRun, load_run

__all__ = ["CRITERIA", "BuiltBundle", "check_exported_weights", "export_bundles", "verify_bundle"]

CRITERIA: dict[Variant, Criteria] = {
    Variant.FP32: FP32,
    # ORT's offline optimization must not change the maths: fp32 criteria.
    Variant.OPTIMIZED: FP32,
    Variant.INT8: INT8,
    Variant.FP16: FP16,
}


@dataclass(frozen=True)
class BuiltBundle:
    """One written bundle and its parity report."""

    variant: Variant
    path: Path
    report: ParityReport


def _load_data(
    path: Path | None, limit: int | None, seed: int, fields: tuple[str | None, str | None] = (None, None)
) -> LabelledTexts | None:
    """The test split of ``path`` (``fields``: its text and label column / key), sampled to ``limit``."""
    if path is None:
        return None
    data = read_dataset(path, split="test", text_field=fields[0], label_field=fields[1])
    return stratified_sample(data, limit, seed) if limit is not None else data


def _metrics(run: LoadedRun, report: ParityReport, variant: Variant) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if run.metrics is not None and run.metrics.test is not None:
        metrics["run_test"] = run.metrics.test
    cpu = report.backends.get("onnxruntime-cpu")
    if cpu is not None and cpu.accuracy is not None:
        metrics["verify_data"] = {
            "source": report.data["source"],
            "labelled_texts": cpu.labelled_texts,
            "accuracy": cpu.accuracy,
            "torch_accuracy": cpu.torch_accuracy,
        }
        if variant is not Variant.FP32:
            metrics["accuracy_delta_points_vs_fp32"] = cpu.accuracy_delta_points
    return metrics


def export_bundles(config: ExportConfig, progress: Progress | None = None) -> list[BuiltBundle]:
    """Export the run to an fp32 bundle, verify it, then derive, verify and write each requested variant.

    Nothing is written for a model that fails its parity check; bundles written before the failure stay.

    Args:
        config: What to export and where.
        progress: Forwarded to ``verify_parity``.

    Returns:
        The bundles written, fp32 first.

    Raises:
        BundleError: A target exists without ``force``, or the run directory is broken.
        ExportError: Export or a variant conversion failed.
        ParityError: A model failed its parity check.
        DataError: ``config.data`` could not be read.
        WriteError: A bundle could not be written (full disk, read-only file system, ...).
    """
    variants = (Variant.FP32, *config.variants)
    for variant in variants:
        recover_target(config.variant_dir(variant))
        check_target(config.variant_dir(variant), config.force, protect=config.run_dir)
    run = load_run(config.run_dir)
    data = _load_data(config.data, config.limit, config.seed, (config.text_field, config.label_field))
    built = []
    make_parent(config.out)
    # A full disk, a read-only file system or a parent that cannot hold files (/proc): one line; the work and staging
    # directories are removed on the way out, so nothing half-written is left.
    with (
        writing(config.out),
        tempfile.TemporaryDirectory(dir=config.out.parent, prefix=f".{config.out.name}.work.") as work,
    ):
        fp32_path = Path(work) / MODEL_FILE
        info = export_onnx(run.model, fp32_path, opset=config.opset, seed=config.seed)
        for variant in variants:
            model_path = fp32_path
            if variant is not Variant.FP32:
                model_path = Path(work) / f"model-{variant.value}.onnx"
                make_variant(variant, fp32_path, model_path)
            report = verify_parity(
                model_path,
                run,
                variant=variant.value,
                criteria=CRITERIA[variant],
                data=data,
                batch_size=config.batch_size,
                seed=config.seed,
                threads=config.threads,
                progress=progress,
            )
            path = write_bundle(
                config.variant_dir(variant),
                model_path=model_path,
                run=run,
                run_dir=config.run_dir,
                info=info,
                variant=variant.value,
                parity=report.summary(),
                metrics=_metrics(run, report, variant),
                version=config.version,
                force=config.force,
            )
            built.append(BuiltBundle(variant, path, report))
    return built


def _bundle_tokenizer(bundle: Path, config: dict[str, Any]) -> Tokenizer:
    """The tokenizer the bundle ships (its settings and ``tokenizer.json``): the one real texts are verified with."""
    try:
        settings = TokenizerConfig.from_dict(config["tokenizer"])
    except (KeyError, TypeError, ValueError) as err:
        where = bundle / BUNDLE_CONFIG_FILE
        raise BundleError(f"{where} has no valid tokenizer settings ({err}); export the bundle again.") from err
    return Tokenizer(settings, rules=load_rules(bundle / TOKENIZER_RULES_FILE))


def check_exported_weights(bundle: Path, weights_sha256: str | None, run_dir: Path) -> None:
    """Require the bundle to have been exported from the run's weights, when its manifest records which.

    Args:
        bundle: The bundle directory.
        weights_sha256: The sha256 of the run's ``model.safetensors`` (checked against its ``metrics.json``).
        run_dir: The run, for the message.

    Raises:
        BundleError: The manifest is unreadable, or records other weights than the run's.
    """
    path = Path(bundle) / MANIFEST_FILE
    try:
        manifest = Manifest.from_dict(parse_json(read_text_capped(path, MAX_JSON_FILE_BYTES)), path)
    except (OSError, ValueError) as err:
        raise BundleError(f"{path} is not a readable manifest ({err}); export the bundle again.") from err
    exported = manifest.export.get("weights_sha256")
    if isinstance(exported, str) and weights_sha256 is not None and exported != weights_sha256:
        raise BundleError(
            f"{bundle} was exported from weights with sha256 {exported[:12]}…, but {Path(run_dir) / WEIGHTS_FILE} has "
            f"sha256 {weights_sha256[:12]}…: not this run's bundle. Verify it against the run it was exported from."
        )


def verify_bundle(
    bundle: Path,
    run_dir: Path,
    *,
    data: Path | None = None,
    limit: int | None = None,
    text_field: str | None = None,
    label_field: str | None = None,
    batch_size: int = 64,
    seed: int = 0,
    threads: int = 1,
    report_path: Path | None = None,
    progress: Progress | None = None,
) -> ParityReport:
    """Verify an existing bundle against the run it came from, with its variant's criteria.

    ``data`` (its test split, ``text_field``/``label_field`` naming a CSV's columns or JSONL's keys) adds real
    texts and accuracy to the generated cases.

    Raises:
        BundleError: The bundle is incomplete, or does not belong to ``run_dir`` (exported from other weights, or
            vocabulary, labels or model settings differ), or the run's weights are not the ones it trained.
        ParityError: Any case failed; the report (when asked for) is written first.
    """
    bundle = Path(bundle)
    config_path = bundle / BUNDLE_CONFIG_FILE
    try:
        config = parse_json(config_path.read_text(encoding="utf-8"))
        variant = Variant(config["variant"])
    except FileNotFoundError as err:
        raise BundleError(f"{config_path} is missing; is {bundle} a bundle from `lstm-onnx export`?") from err
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise BundleError(f"{config_path} is not a valid bundle config ({err}); export the bundle again.") from err
    model_path = bundle / MODEL_FILE
    if not model_path.is_file():
        raise BundleError(f"{model_path} is missing; export the bundle again.")
    run = load_run(run_dir)
    check_exported_weights(bundle, run.weights_sha256, run_dir)
    if Vocab.load(bundle / VOCAB_FILE) != run.vocab:
        raise BundleError(f"{bundle / VOCAB_FILE} differs from {Path(run_dir) / VOCAB_FILE}: not this run's bundle.")
    mismatched = [
        key for key, ours in (("labels", run.labels), ("model", run.model_config.to_dict())) if config.get(key) != ours
    ]
    if mismatched:
        raise BundleError(
            f"{config_path} does not match run {run_dir} in {mismatched}; verify against the run it was exported from."
        )
    return verify_parity(
        model_path,
        run,
        variant=variant.value,
        criteria=CRITERIA[variant],
        data=_load_data(data, limit, seed, (text_field, label_field)),
        batch_size=batch_size,
        seed=seed,
        threads=threads,
        tokenizer=_bundle_tokenizer(bundle, config),
        report_path=report_path,
        progress=progress,
    )
