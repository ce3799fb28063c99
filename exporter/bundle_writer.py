"""write_bundle: model + vocab + config + tokenizer rules + model card + manifest, written atomically."""

from __future__ import annotations

import platform
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch

from lstm_onnx import __version__
from lstm_onnx.exporter.config import BUNDLE_NAME
from lstm_onnx.exporter.export import EXPORTER_REASON, ExportInfo
from lstm_onnx.runtime.atomic import check_target, replace_directory
from lstm_onnx.runtime.bundle_format import BundleConfig, Manifest, seal_manifest, write_json
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.contract import (
    BUNDLE_CONFIG_FILE,
    BUNDLE_FORMAT_VERSION,
    CLASSIFY_IO,
    MODEL_CARD_FILE,
    MODEL_FILE,
    TOKENIZER_RULES_FILE,
    VOCAB_FILE,
)
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, save_rules
from lstm_onnx.trainer.run_dir import LoadedRun

__all__ = [
    "make_parent",
    "new_manifest",
    "recover_target",
    "staged_bundle",
    "toolkit_versions",
    "with_weights",
    "write_bundle",
]

# Leftover work directories of exports that started before this process are from killed runs: swept.
_PROCESS_START = time.time()


def _leftovers(out: Path) -> list[Path]:
    """Work (``.work.*``), staging (``.tmp``) and set-aside (``.old``) directories of exports to ``out``.

    Only names of exactly the shapes ``tempfile`` gives them here (eight characters of ``[a-z0-9_]``) count: a
    folder of the user's that merely starts with ``.<name>.`` (``.data.cache``) is never touched.
    """
    if not out.parent.is_dir():
        return []
    shape = re.compile(rf"\.{re.escape(out.name)}\.(?:work\.[a-z0-9_]{{8}}|[a-z0-9_]{{8}}\.(?:tmp|old))")
    return [p for p in out.parent.iterdir() if shape.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


def recover_target(out: Path) -> None:
    """Restore a bundle a crash left set aside, then sweep leftovers of killed exports to ``out``.

    ``--force`` moves the old bundle to ``.<name>.*.old/<name>`` before renaming the new one in; a crash between
    the two renames leaves no bundle at ``out``, so the set-aside one is moved back first.
    """
    for leftover in sorted(_leftovers(out)):
        kept = leftover / out.name
        if leftover.name.endswith(".old") and kept.is_dir() and not out.exists():
            kept.rename(out)
            shutil.rmtree(leftover, ignore_errors=True)
        elif leftover.stat().st_mtime < _PROCESS_START:
            shutil.rmtree(leftover, ignore_errors=True)


def make_parent(out: Path) -> None:
    """Create ``out``'s parent folder (work and staging directories go beside ``out``).

    Raises:
        BundleError: It cannot be created (read-only file system, a file in the way, no permission).
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BundleError(f"Cannot create {out.parent} for --out {out}: {err.strerror}.") from err


def toolkit_versions() -> dict[str, str]:
    """The manifest's ``versions`` block: toolkit, python, torch, onnx and onnxruntime versions of this export."""
    return {
        "toolkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _recorded_data(run: LoadedRun) -> dict[str, Any] | None:
    """The run's data record; runs from before records carried paths keep only the file or folder names."""
    data = run.config.data
    if data is None:
        return None
    return {
        key: {"name": Path(value.split(" (")[0]).name} if isinstance(value, str) and key in ("train", "test") else value
        for key, value in data.items()
    }


def write_tokenizer_rules(run_dir: Path, path: Path) -> None:
    """Copy the tokenizer rules pinned in the run (classifier or tagger); a run made before they were pinned gets
    the installed spaCy's rules, with a warning (they may tokenize differently from training)."""
    pinned = Path(run_dir) / TOKENIZER_RULES_FILE
    if pinned.is_file():
        shutil.copyfile(pinned, path)
        return
    from importlib.metadata import version

    warnings.warn(
        f"{Path(run_dir).name} has no {TOKENIZER_RULES_FILE} (trained before tokenizer rules were saved with the "
        f"run); the bundle gets spaCy {version('spacy')}'s rules instead, which may split some texts differently "
        "from training. Retrain the run to pin its rules.",
        UserWarning,
        stacklevel=3,
    )
    save_rules(dump_spacy_rules(), path)


def write_bundle(
    out: Path,
    *,
    model_path: Path,
    run: LoadedRun,
    run_dir: Path,
    info: ExportInfo,
    variant: str,
    parity: dict[str, Any],
    metrics: dict[str, Any],
    version: str,
    force: bool,
) -> Path:
    """Write a bundle directory into a temporary directory beside ``out``, then rename it into place.

    An interrupted write leaves ``out`` untouched (no half-written bundle).

    Args:
        out: Target bundle directory.
        model_path: The verified ONNX graph to ship.
        run: The loaded run (labels, configs, metrics).
        run_dir: Its directory (``vocab.txt`` is copied byte for byte).
        info: Export settings.
        variant: ``fp32``, ``optimized``, ``int8`` or ``fp16``.
        parity: ``ParityReport.summary()``.
        metrics: The manifest's ``metrics`` block.
        version: Semantic version of the bundle.
        force: Replace an existing ``out``.

    Returns:
        ``out``.

    Raises:
        BundleError: ``out`` exists without ``force``.
    """
    out = Path(out)
    recover_target(out)
    check_target(out, force, protect=run_dir)
    with staged_bundle(out) as staging:
        shutil.copyfile(model_path, staging / MODEL_FILE)
        shutil.copyfile(run_dir / VOCAB_FILE, staging / VOCAB_FILE)
        config = BundleConfig(
            labels=list(run.labels),
            tokenizer=run.tokenizer_config,
            model=run.model_config.to_dict(),
            vocab_size=len(run.vocab),
            variant=variant,
        )
        write_json(staging / BUNDLE_CONFIG_FILE, config.to_dict())
        write_tokenizer_rules(run_dir, staging / TOKENIZER_RULES_FILE)
        manifest = new_manifest(BUNDLE_NAME, version, info, variant, CLASSIFY_IO.to_manifest(len(run.labels)))
        manifest = replace(
            manifest,
            export=with_weights(manifest.export, run.weights_sha256),
            parity=parity,
            metrics=metrics,
            data=_recorded_data(run),
        )
        card = render_card(manifest, config.to_dict(), out.name)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        seal_manifest(staging, manifest)
    return out


def new_manifest(name: str, version: str, info: ExportInfo, variant: str, io: dict[str, Any]) -> Manifest:
    """A manifest for a bundle exported now: identity, versions, export settings and IO; parity, metrics and
    checksums are left empty for the writer to fill (``dataclasses.replace``, then ``seal_manifest``).

    Args:
        name: Model name.
        version: Semantic version of the bundle.
        info: Export settings.
        variant: ``fp32``, ``optimized``, ``int8`` or ``fp16``.
        io: ``IO_SPECS[task].to_manifest(C)``.
    """
    return Manifest(
        format_version=BUNDLE_FORMAT_VERSION,
        name=name,
        version=version,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        versions=toolkit_versions(),
        export={
            "opset": info.opset,
            "exporter_mode": info.exporter_mode,
            "exporter_reason": EXPORTER_REASON,
            "example_shape": list(info.example_shape),
            "variant": variant,
        },
        io=io,
        parity={},
        files={},
    )


def with_weights(export: dict[str, Any], weights_sha256: str | None) -> dict[str, Any]:
    """The manifest's ``export`` block with the sha256 of the run weights exported (``weights_sha256``), which the run's
    ``metrics.json`` records too: the card's metrics and ``verify --against`` are tied to those weights."""
    return export if weights_sha256 is None else {**export, "weights_sha256": weights_sha256}


@contextmanager
def staged_bundle(out: Path) -> Iterator[Path]:
    """A staging directory beside ``out``, renamed onto ``out`` (``replace_directory``) once the block succeeds.

    An exception in the block (or an interrupt) removes the staging directory and leaves ``out`` untouched, so no
    half-written bundle is ever seen at ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    staging.chmod(0o755)  # mkdtemp makes it 0700; a bundle is meant to be read by the serving user too
    try:
        yield staging
        replace_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
