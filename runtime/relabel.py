"""Rename a bundle's labels: at load time (``labels=`` of ``lstm_onnx.load``) or for good (``lstm-onnx relabel``).

The model only knows class ids; label names live in ``config.json`` (and, as keys, in the manifest's metrics and the
card). ``relabel_bundle`` rewrites those, re-renders the card and records the new checksums, so the result passes
``load_bundle`` like any exported bundle.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.archive import bundle_directory
from lstm_onnx.runtime.atomic import check_target, replace_directory, writing
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.bundle_format import seal_manifest, write_json
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, MODEL_CARD_FILE
from lstm_onnx.runtime.errors import BundleError, LabelError
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.session import SessionConfig

__all__ = ["LabelNames", "relabel_bundle", "rename_labels"]

# Either every label in id order, or {old name: new name} for some of them.
LabelNames = Sequence[str] | Mapping[str, str]


def rename_labels(current: Sequence[str], names: LabelNames) -> list[str]:
    """The labels after renaming.

    Args:
        current: The bundle's labels, in id order (C of them).
        names: C new names in id order, or ``{old: new}`` for the labels to rename.

    Returns:
        C labels in id order.

    Raises:
        LabelError: Wrong count, an unknown old label, an empty or non-string name, a name with a control or
            invisible format character or a line break, or two labels that print alike (``runtime.label_names``).
    """
    if isinstance(names, Mapping):
        unknown = [old for old in names if old not in current]
        if unknown:
            raise LabelError(f"Unknown label(s) {unknown}; this bundle's labels are {list(current)}.")
        new = [names.get(label, label) for label in current]
    elif isinstance(names, str) or not isinstance(names, Sequence):
        raise LabelError(f"labels must be a list of names or a {{old: new}} dict, got {type(names).__name__}.")
    else:
        new = list(names)
        if len(new) != len(current):
            raise LabelError(f"Got {len(new)} label names for a bundle with {len(current)} labels {list(current)}.")
    bad = [name for name in new if not isinstance(name, str) or not name.strip()]
    if bad:
        raise LabelError(f"Label names must be non-empty strings, got {bad!r}.")
    # A name is written into one-line places (the wheel's METADATA headers, table cells) and read by eye.
    problem = label_problem(new)
    if problem:
        raise LabelError(f"{problem}.")
    return new


def _renamed_metrics(metrics: Any, old: list[str], new: list[str]) -> Any:
    """The manifest's metrics with label names (``labels`` lists, ``per_label`` keys) renamed."""
    mapping = dict(zip(old, new, strict=True))
    if isinstance(metrics, dict):
        out: dict[str, Any] = {}
        for key, value in metrics.items():
            if key == "labels" and isinstance(value, list):
                out[key] = [mapping.get(v, v) for v in value]
            elif key == "per_label" and isinstance(value, dict):
                out[key] = {mapping.get(k, k): v for k, v in value.items()}
            else:
                out[key] = _renamed_metrics(value, old, new)
        return out
    return metrics


def relabel_bundle(
    bundle: Path | str, names: LabelNames, out: Path | str | None = None, *, force: bool = False
) -> Path:
    """Write a copy of ``bundle`` whose labels are renamed (config, metrics, card and checksums kept consistent).

    Args:
        bundle: A bundle directory, or a ``.zip``/``.tar.gz`` of one.
        names: As ``rename_labels``.
        out: Target directory. ``None``: ``<bundle>-relabelled`` beside it, or, with ``force``, the bundle itself,
            replaced atomically.
        force: Replace an existing target.

    Returns:
        The relabelled bundle's directory.

    Raises:
        BundleError: The bundle is broken; the target exists without ``force``, is a file, is a directory that is
            not a bundle (``force`` never deletes such a folder), or sits inside the bundle.
        LabelError: As ``rename_labels``.
        WriteError: The copy could not be written (full disk, read-only file system, ...); nothing is left of it.
    """
    source = Path(bundle)
    if out is None:
        stem = source.name.removesuffix(".zip").removesuffix(".tar.gz").removesuffix(".tgz")
        in_place = force and source.is_dir()
        target = source if in_place else source.with_name(f"{stem}-relabelled")
    else:
        target = Path(out)
    if source.is_dir() and source.resolve() in target.resolve().parents:
        raise BundleError(f"--out {target} sits inside the bundle {source}; choose a directory outside it.")
    # --force replaces only a bundle (or an empty directory), never a folder holding anything else.
    check_target(target, force)
    with writing(target):  # a full disk or read-only file system: one line; the staging directory is removed first
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        staging.chmod(0o755)
        _write_relabelled(source, target, staging, names)
    return target


def _write_relabelled(source: Path, target: Path, staging: Path, names: LabelNames) -> None:
    """Write the relabelled bundle into ``staging`` and swap it into ``target``; ``staging`` is removed on failure."""
    try:
        with bundle_directory(source) as root:
            loaded = load_bundle(root, SessionConfig(providers="cpu"))
            new = rename_labels(loaded.labels, names)
            for name in loaded.manifest.files:
                shutil.copyfile(root / name, staging / name)
        config = replace(loaded.settings, labels=new)
        write_json(staging / BUNDLE_CONFIG_FILE, config.to_dict())
        manifest = replace(loaded.manifest, metrics=_renamed_metrics(loaded.manifest.metrics, loaded.labels, new))
        if loaded.task == "tag":  # the tagger's card is rendered at export from its run: keep it, record the renaming
            card = (staging / MODEL_CARD_FILE).read_text(encoding="utf-8") if MODEL_CARD_FILE in manifest.files else ""
            renamed = ", ".join(
                f"`{old}` → `{name}`" for old, name in zip(loaded.labels, new, strict=True) if old != name
            )
            card = card.rstrip("\n") + f"\n\n## Labels renamed\n\n`lstm-onnx relabel`: {renamed}.\n"
        else:
            card = render_card(manifest, config.to_dict(), target.name)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        seal_manifest(staging, manifest)
        load_bundle(staging, SessionConfig(providers="cpu"))  # never put a bundle in place that does not load
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
