"""What data a run or bundle came from, recorded without the building machine's paths.

A run's config, a bundle's manifest and its model card name data by its file or directory name plus a digest, so
they can be shared and compared across machines without leaking where the builder kept the files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.bundle import sha256_file
from lstm_onnx.runtime.datasets import LabelledTexts, detect_format
from lstm_onnx.runtime.errors import DataError

__all__ = ["data_record", "describe_data"]


def data_record(path: Path | str) -> dict[str, Any]:
    """Name and digest of a data file or directory, free of absolute paths.

    A file is recorded by its sha256 and size. A directory (an unpacked IMDB set holds 100,000 files) is recorded by
    the sha256 of its sorted listing of ``relative/path<TAB>bytes`` lines: cheap to compute, yet it changes when a
    file is added, removed, renamed or resized.

    Args:
        path: A data file or directory.

    Returns:
        ``{"name", "sha256", "bytes"}`` for a file; ``{"name", "listing_sha256", "files", "bytes"}`` for a directory.

    Raises:
        DataError: ``path`` does not exist.
    """
    path = Path(path)
    if path.is_file():
        return {"name": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    if not path.is_dir():
        raise DataError(f"Data path {path} does not exist; check the path.")
    lines: list[str] = []
    total = 0
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            file = Path(folder, name)
            size = file.stat().st_size
            total += size
            lines.append(f"{file.relative_to(path).as_posix()}\t{size}\n")
    digest = hashlib.sha256("".join(lines).encode("utf-8", errors="surrogateescape")).hexdigest()
    return {"name": path.name, "listing_sha256": digest, "files": len(lines), "bytes": total}


def describe_data(data: LabelledTexts) -> dict[str, Any]:
    """The record of a set of labelled texts: where they came from (name + digest), which split, how many.

    Args:
        data: Texts read by ``runtime.datasets.read_dataset`` (their ``origin`` is recorded by name and digest), or
            made in code (their ``source`` is recorded with any folders stripped).

    Returns:
        ``{"name", "format", "split", "texts", ...digest keys of data_record}``.
    """
    if data.origin is None:
        # Made in code: keep the label, never a folder it may name.
        return {"name": Path(data.source).name or data.source, "texts": len(data)}
    record: dict[str, Any] = {"format": detect_format(data.origin), "split": data.split, "texts": len(data)}
    return {**data_record(data.origin), **record}
