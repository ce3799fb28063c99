"""`lstm-onnx verify` for a tagging bundle: the bundle's graph against its run's PyTorch tagger, judged by the
criteria its variant was exported under (valid positions only; a sentence alone equals it in a padded batch)."""

from __future__ import annotations

from pathlib import Path

from lstm_onnx.exporter.build import CRITERIA, check_exported_weights
from lstm_onnx.exporter.tagger_parity import TagParity, judge, measure_tag_parity
from lstm_onnx.exporter.variants import Variant
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.contract import MODEL_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import dump_json, finite_or_null
from lstm_onnx.runtime.session import SessionConfig
from lstm_onnx.runtime.tagging_data import read_tagged
from lstm_onnx.trainer.tag_run import load_tag_run

__all__ = ["verify_tag_bundle"]


def verify_tag_bundle(
    bundle_dir: Path,
    run_dir: Path,
    data: Path | None = None,
    limit: int | None = None,
    report_path: Path | None = None,
    threads: int = 1,
) -> TagParity:
    """Check a tagging bundle computes what its run's PyTorch tagger computes.

    Args:
        bundle_dir: The bundle directory (already extracted if it came as an archive).
        run_dir: The tagging run it was exported from.
        data: Tagged data (CoNLL-U file, or a folder of splits: its test split): parity and accuracy on it.
        limit: Use at most this many sentences of ``data``.
        report_path: Write the measurement as JSON here, also when parity fails.
        threads: ONNX Runtime intra-op threads.

    Returns:
        The measurement, judged.

    Raises:
        BundleError: The bundle fails its load checks, is not a tagging bundle, was exported from other weights, or
            the run's weights are not the ones it trained.
        ParityError: A criterion of the bundle's variant failed (every failure is named).
    """
    bundle = load_bundle(bundle_dir, SessionConfig(providers="cpu"))  # checksums, files, IO, before anything runs
    if bundle.task != "tag":
        raise BundleError(f"{bundle_dir} is not a tagging bundle; verify it against a classification run.")
    try:
        variant = Variant(str(bundle.manifest.export.get("variant", bundle.settings.variant or "fp32")))
    except ValueError as err:
        raise BundleError(
            f"{bundle_dir}: unknown variant in manifest.json ({err}); run `lstm-onnx export` again."
        ) from err
    run = load_tag_run(run_dir)
    check_exported_weights(bundle_dir, run.weights_sha256, run_dir)
    sentences = None
    if data is not None:
        sentences = read_tagged(data, "test", run.config.tagset or "upos")
        sentences = sentences.head(limit) if limit is not None else sentences
    criteria = CRITERIA[variant]
    report = measure_tag_parity(bundle_dir / MODEL_FILE, run, variant.value, criteria, sentences, threads=threads)
    try:
        judge(report, criteria)
    finally:
        if report_path is not None:
            report_path.write_text(dump_json(finite_or_null(report.summary())) + "\n", encoding="utf-8")
    return report
