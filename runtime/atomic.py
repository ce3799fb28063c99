"""Put a fully written directory in place in one step, so readers never meet a half-written one, and never over
anything but a bundle; and say in one line why an output could not be written (``write_failure``, ``writing``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lstm_onnx.runtime.contract import MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError, WriteError
from lstm_onnx.runtime.json_text import MAX_JSON_FILE_BYTES, parse_json, read_text_capped

__all__ = ["check_target", "replace_directory", "write_failure", "writing"]

# What to do about the usual reasons an output cannot be written.
_WRITE_HINTS = {
    errno.ENOSPC: "free some space there, or choose another place",
    errno.EDQUOT: "the disk quota is used up; free some space there, or choose another place",
    errno.EFBIG: "the file system cannot hold a file that large; choose another place",
    errno.EROFS: "the file system is read-only; choose a writable place",
    errno.EACCES: "no permission to write there; choose a writable place",
    errno.EPERM: "no permission to write there; choose a writable place",
    errno.ENOENT: "a folder on the way is missing or cannot hold files (as /proc cannot); choose a writable place",
    errno.ENOTDIR: "a file stands where a folder is needed on the way; choose another place",
    errno.EISDIR: "a folder stands where the file would go; choose another place",
}


def write_failure(err: OSError, target: Path | str) -> WriteError:
    """The one-line ``WriteError`` for an ``OSError`` met while writing ``target``.

    Args:
        err: What the system said.
        target: The output being written (a file, or the directory of a bundle or run).

    Returns:
        The error to raise (``raise write_failure(err, out) from err``): what failed, the system's reason, and the fix.
    """
    reason = err.strerror or str(err) or type(err).__name__
    file = err.filename2 or err.filename  # a copy names its source first and the file it was writing second
    where = f" ({file})" if file and str(file) != str(target) else ""
    hint = _WRITE_HINTS.get(err.errno or 0, "choose another place")
    return WriteError(f"Cannot write {target}: {reason}{where}; {hint}.")


@contextmanager
def writing(target: Path | str) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``target`` into its one-line ``WriteError`` (``write_failure``).

    The block must clean up what it wrote itself (staging directories, temporary files) before the error leaves it.

    Raises:
        WriteError: The block raised an ``OSError``.
    """
    try:
        yield
    except OSError as err:
        raise write_failure(err, target) from err


# renameat2(2) flag: swap two paths atomically (Linux 3.15+, glibc 2.28+).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step; ``False`` where the system cannot (then nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def replace_directory(staging: Path, target: Path) -> Path:
    """Rename ``staging`` (written beside ``target``, on the same file system) to ``target``.

    An existing ``target`` is swapped with ``staging`` in one atomic step where the system allows it (Linux), so
    readers see the old directory until the new one is there; elsewhere it is moved aside first and removed only
    after the new one is in place, so a crash between the two renames never loses both.

    Args:
        staging: The complete new directory.
        target: Where it belongs.

    Returns:
        ``target``.
    """
    if not target.exists():
        staging.rename(target)
        return target
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now the old directory
        return target
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    target.rename(old / target.name)
    staging.rename(target)
    shutil.rmtree(old)
    return target


def _is_bundle(path: Path) -> bool:
    """Whether ``path`` is a directory holding our manifest and nothing it does not list."""
    try:
        manifest = parse_json(read_text_capped(path / MANIFEST_FILE, MAX_JSON_FILE_BYTES))
    except (OSError, ValueError):
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
            with other files: ``--force`` never deletes those; an empty directory is fine); sits inside a bundle;
            or is, holds or sits inside ``protect``.
    """
    out = Path(out)
    if out.is_file() or out.is_symlink():
        raise BundleError(f"{out} is a file or link; give a directory path for the bundle.")
    # A bundle holds only the files its manifest lists: one written inside another would break the outer one.
    inside = next((p for p in out.resolve().parents if (p / MANIFEST_FILE).is_file()), None)
    if inside is not None:
        raise BundleError(f"--out {out} sits inside the bundle {inside}; choose a path outside it.")
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
