"""What runs killed outright (``kill -9``, the out-of-memory killer) leave behind, found by the process id in its name.

A run names its temporary outputs and folders with its process id; a later run removes those whose process no longer
runs (and that belong to the same user). A process id reused by another process keeps its leftovers in place, which
errs on the safe side.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

__all__ = ["pid_running", "sweep"]


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists (``True`` where that cannot be told, e.g. on Windows)."""
    if sys.platform == "win32" or pid <= 0:
        return True  # os.kill(pid, 0) would terminate the process there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's
        return True
    return True


def sweep(folder: Path, prefix: str, suffix: str = "") -> int:
    """Remove ``folder/PREFIX<pid>...SUFFIX`` entries (files or folders, never links) of this user whose process
    ``<pid>`` (the digits right after ``prefix``) no longer runs; returns how many were removed."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            digits = name[len(prefix) :].split(".", 1)[0].split("-", 1)[0]
            if not digits.isdigit() or int(digits) == os.getpid() or pid_running(int(digits)):
                continue
            with contextlib.suppress(OSError):
                info = entry.lstat()
                if hasattr(os, "getuid") and info.st_uid != os.getuid():
                    continue
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
    return removed
