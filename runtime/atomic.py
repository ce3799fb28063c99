"""Put a fully written directory in place in one step, so readers never meet a half-written one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

__all__ = ["replace_directory"]


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
