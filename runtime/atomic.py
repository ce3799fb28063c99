"""Put a fully written directory in place in one step, so readers never meet a half-written one, and never over
anything but a bundle."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from lstm_onnx.runtime.contract import MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError

__all__ = ["check_target", "replace_directory"]


def replace_directory(staging: Path, target: Path) -> Path:
    """Rename ``staging`` (written beside ``target``, on the same file system) to ``target``.

    An existing ``target`` is first moved aside and removed only after the new one is in place, so a crash between
    the renames never loses both.

    Args:
        staging: The complete new directory.
        target: Where it belongs.

    Returns:
        ``target``.
    """
    if not target.exists():
        staging.rename(target)
        return target
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    target.rename(old / target.name)
    staging.rename(target)
    shutil.rmtree(old)
    return target


def _is_bundle(path: Path) -> bool:
    """Whether ``path`` is a directory holding our manifest and nothing it does not list."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return False
    if not isinstance(manifest.get("format_version"), int):
        return False
    listed = set(manifest["files"]) | {MANIFEST_FILE}
    return all(p.name in listed and p.is_file() and not p.is_symlink() for p in path.iterdir())


def check_target(out: Path, force: bool, protect: Path | None = None) -> None:
    """Refuse to replace an existing ``out`` unless ``force`` and ``out`` is a bundle.

    Args:
        out: The bundle directory to write.
        force: Replace an existing bundle.
        protect: A directory that must never be replaced or hold the bundle (the training run).

    Raises:
        BundleError: ``out`` is a file; exists without ``force``; is not a bundle (a run directory or a folder
            with other files: ``--force`` never deletes those; an empty directory is fine); or is, holds or sits
            inside ``protect``.
    """
    out = Path(out)
    if out.is_file() or out.is_symlink():
        raise BundleError(f"{out} is a file or link; give a directory path for the bundle.")
    if protect is not None:
        a, b = out.resolve(), Path(protect).resolve()
        if a == b or a in b.parents or b in a.parents:
            raise BundleError(
                f"--out {out} is, holds or sits inside the run directory {protect}; choose another --out."
            )
    if not out.exists():
        return
    if not force:
        raise BundleError(f"Bundle {out} already exists; pass --force to replace it, or choose another --out.")
    if any(out.iterdir()) and not _is_bundle(out):
        raise BundleError(
            f"{out} exists and is not a bundle (no {MANIFEST_FILE} listing every file in it); --force replaces only "
            "bundles written by `lstm-onnx export`. Choose another --out, or empty the directory yourself."
        )
