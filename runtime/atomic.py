"""Put a fully written directory in place in one step, so readers never meet a half-written one."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["replace_directory"]

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
