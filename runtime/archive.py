"""Open a bundle kept as a ``.zip`` or ``.tar.gz``: checked member by member, extracted into a temporary directory.

An archive may come from anywhere, so nothing in it is trusted: absolute names, ``..``, links, devices, too many
members and too many bytes (a decompression bomb) are refused before or while extracting, never after. The bundle
may lie at the archive's top level or inside one top-level folder.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from lstm_onnx.runtime.contract import MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.leftovers import sweep

__all__ = ["ARCHIVE_SUFFIXES", "MAX_MEMBERS", "MAX_UNPACKED_BYTES", "bundle_directory", "is_archive"]

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
# A bundle is six files (plus a folder); room for a few more, far from what a hostile archive would need.
MAX_MEMBERS = 64
# ONNX keeps a model in one protobuf, capped at 2 GiB; a bundle is that plus small text files.
MAX_UNPACKED_BYTES = 2 * 1024**3 + 256 * 1024**2
_BLOCK = 1 << 20
# Extraction folders in the system's temporary directory: EXTRACT_PREFIX, the process id, '-', a random part.
EXTRACT_PREFIX = "lstm-onnx-bundle-"


def is_archive(path: Path) -> bool:
    """Whether ``path`` names a bundle archive (by its suffix)."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or BundleError when it could land outside the extraction directory."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise BundleError(
            f"Archive {archive} holds the member {name!r} with an absolute or non-portable name; refused."
        )
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise BundleError(f"Archive {archive} holds the member {name!r}, which points outside the archive; refused.")
    return PurePosixPath(*[p for p in parts if p != "."])


class _Budget:
    """Counts members and unpacked bytes against the caps."""

    def __init__(self, archive: Path, max_members: int, max_bytes: int) -> None:
        self.archive, self.max_members, self.max_bytes = archive, max_members, max_bytes
        self.members = 0
        self.bytes = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise BundleError(
                f"Archive {self.archive} holds more than {self.max_members} members; a bundle has a handful of "
                "files. Refused: archive the bundle directory alone."
            )

    def declared(self, n: int) -> None:
        """Refuse a member whose declared size alone would break the cap (before reading it)."""
        if self.bytes + n > self.max_bytes:
            self.take(n)

    def take(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise BundleError(
                f"Archive {self.archive} unpacks to more than {self.max_bytes} bytes, the cap for a bundle; refused "
                "(a corrupt or hostile archive)."
            )


def _copy(source: IO[bytes], target: Path, budget: _Budget) -> None:
    """Stream one member out, counting real bytes (a member's declared size may lie)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        while block := source.read(_BLOCK):
            budget.take(len(block))
            out.write(block)


def _extract_zip(archive: Path, into: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        seen: set[PurePosixPath] = set()
        for info in zf.infolist():
            budget.member()
            rel = _safe_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise BundleError(
                    f"Archive {archive} holds {info.filename!r}, a link or special file; a bundle holds plain files "
                    "only. Refused."
                )
            if rel in seen:
                raise BundleError(f"Archive {archive} holds {info.filename!r} twice; refused.")
            seen.add(rel)
            budget.declared(info.file_size)
            if info.is_dir():
                (into / rel).mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _copy(source, into / rel, budget)


def _extract_tar(archive: Path, into: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as tf:
        # Iterate lazily: a hostile header is refused as soon as it is read, before the rest is decompressed.
        for member in tf:
            budget.member()
            rel = _safe_name(archive, member.name)
            if member.isdir():
                (into / rel).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                raise BundleError(
                    f"Archive {archive} holds {member.name!r}, a link or special file; a bundle holds plain files "
                    "only. Refused."
                )
            budget.declared(member.size)
            if (into / rel).exists():
                raise BundleError(f"Archive {archive} holds {member.name!r} twice; refused.")
            source = tf.extractfile(member)
            if source is None:  # pragma: no cover - regular members always have content
                continue
            with source:
                _copy(source, into / rel, budget)


def _bundle_root(archive: Path, into: Path) -> Path:
    if (into / MANIFEST_FILE).is_file():
        return into
    entries = list(into.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    raise BundleError(
        f"Archive {archive} holds no bundle: expected {MANIFEST_FILE} at its top level or inside one top-level "
        "folder. Archive the directory `lstm-onnx export` wrote."
    )


@contextmanager
def bundle_directory(
    path: Path | str, *, max_members: int = MAX_MEMBERS, max_unpacked_bytes: int = MAX_UNPACKED_BYTES
) -> Iterator[Path]:
    """The bundle directory at ``path``: the directory itself, or an archive's contents extracted safely.

    An archive is extracted into a temporary directory that is removed when the ``with`` block ends, so whatever
    is loaded inside the block must be read into memory there (ONNX Runtime reads the model at session creation).

    Args:
        path: A bundle directory, or a ``.zip`` / ``.tar.gz`` / ``.tgz`` of one.
        max_members: Most archive members (files and folders) accepted.
        max_unpacked_bytes: Most bytes the archive may unpack to.

    Yields:
        The bundle directory.

    Raises:
        BundleError: The path is neither a directory nor a bundle archive; the archive is corrupt, holds an unsafe
            member (absolute name, ``..``, link, device), too many members or too many bytes, or no bundle.
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        yield path  # load_bundle names a missing directory itself
        return
    if not is_archive(path):
        raise BundleError(
            f"{path} is a file, not a bundle: give a bundle directory or a {'/'.join(ARCHIVE_SUFFIXES)} of one."
        )
    # The process id in the name lets a later run remove what a run killed outright (kill -9) left extracted.
    sweep(Path(tempfile.gettempdir()), EXTRACT_PREFIX)
    with tempfile.TemporaryDirectory(prefix=f"{EXTRACT_PREFIX}{os.getpid()}-") as tmp:
        into = Path(tmp)
        budget = _Budget(path, max_members, max_unpacked_bytes)
        try:
            if path.name.lower().endswith(".zip"):
                _extract_zip(path, into, budget)
            else:
                _extract_tar(path, into, budget)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as err:
            raise BundleError(f"Cannot read the archive {path}: {err}. Is it a complete .zip/.tar.gz?") from err
        yield _bundle_root(path, into)
