"""Move files to the GPU machine in calls of limited size, and put them back together there (stdlib only).

The device tool sends at most 64 MiB per call (the working tree included), so what the GPU proof needs but the
machine lacks (ONNX Runtime's CUDA build, the project's wheel, the labelled IMDB reviews, the GloVe vectors, the
tokenizer rules, UD EWT) travels in consecutive calls, one git-ignored folder per call: ``.device/c1``,
``.device/c2``, ... Files are cut into parts that fill each call; the last folder also holds ``carry.json``, the
manifest that lists every file, its parts and their sha256.

- ``prepare`` (the CPU machine; ``scripts/gpu_carry.sh`` calls it): repack wheels without zip compression and
  compress them with xz (ONNX Runtime's CUDA wheel: 255.6 MB as published, 203 MB this way, one call fewer), cut
  the labelled reviews out of the IMDB archive, plan the calls, write the folders and print the device calls.
- ``check`` (each call, on the machine): verify the folders that arrived so far, say which are missing.
- ``join`` (the last call): verify every part, join and decompress each file into a destination folder, verify
  each file's sha256 again.

Usage: ``python3 scripts/gpu_carry.py {prepare,check,join} ...`` (``--help`` for each).
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import hashlib
import io
import json
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "carry.json"
SUMS = "SHA256SUMS"
FORMAT = 1
MIB = 1024 * 1024
# What one device call may carry: 64 MiB in all, the working tree included (the tree's size is passed in).
CALL_LIMIT = 64 * MIB
# Kept free in every call: the manifest, SHA256SUMS and files a session adds to the tree after planning.
MARGIN = 1 * MIB
# Bytes carried per call at most: fixed (while the tree stays under 3 MiB), so the parts of a file do not move when
# the tree changes; after a code change only the last folder (the project's wheel) differs and needs resending.
PART_LIMIT = 60 * MIB
# aclImdb/<split>/<label>/<id>_<rating>.txt: the labelled reviews (runtime.datasets reads the same names).
_IMDB_LABELLED = re.compile(r"(?:^|/)(train|test)/(pos|neg)/\d+_\d+\.txt$")
_CHUNK = 4 * MIB


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ preparing files


def _record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """The wheel's RECORD: member name -> ``sha256=<urlsafe base64>``."""
    records = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise ValueError(f"expected one .dist-info/RECORD in the wheel, found {records}")
    rows = csv.reader(io.StringIO(wheel.read(records[0]).decode("utf-8")))
    return {row[0]: row[1] for row in rows if row and len(row) > 1 and row[1]}


def repack_stored(src: Path, dst: Path) -> None:
    """Rewrite a wheel with every member stored (not deflated), same names, order, dates and modes, after checking
    each file against the wheel's RECORD (folders have no entry). xz then compresses the whole far better than
    zip's deflate did; pip installs a stored wheel like any other.

    Raises:
        ValueError: A member's sha256 differs from its RECORD entry, or a member has none.
    """
    with zipfile.ZipFile(src) as wheel, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as out:
        hashes = _record_hashes(wheel)
        for info in wheel.infolist():
            data = wheel.read(info)
            expected = hashes.get(info.filename)
            if not (info.is_dir() or info.filename.endswith(".dist-info/RECORD")):
                actual = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
                if expected != actual:
                    raise ValueError(f"{src.name}: {info.filename} has {actual}, RECORD says {expected}")
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            copy.create_system = info.create_system
            copy.compress_type = zipfile.ZIP_STORED
            out.writestr(copy, data)


def labelled_imdb(src: Path, dst: Path) -> int:
    """Write the labelled IMDB reviews (train and test, pos and neg; no ``unsup``) of the original archive or an
    unpacked ``aclImdb`` folder into an uncompressed tar, members as the archive names them, dates zeroed.

    Returns:
        The number of reviews written.
    """
    count = 0
    with tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
        for name, data in _imdb_members(src):
            if _IMDB_LABELLED.search(name):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                out.addfile(info, io.BytesIO(data))
                count += 1
    if count == 0:
        raise ValueError(f"{src} holds no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews")
    return count


def _imdb_members(src: Path) -> Iterator[tuple[str, bytes]]:
    if src.is_dir():
        for path in sorted(src.rglob("*.txt")):
            yield path.relative_to(src).as_posix(), path.read_bytes()
        return
    with tarfile.open(src, "r:*") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                yield member.name, handle.read()


def xz_compress(src: Path, dst: Path) -> None:
    """xz -9 with every core (the xz program where installed, else Python's lzma on one core)."""
    xz = shutil.which("xz")
    if xz is not None:
        with open(dst, "wb") as out:
            subprocess.run([xz, "-9", "-T0", "-c", str(src)], stdout=out, check=True)
        return
    with open(src, "rb") as handle, lzma.open(dst, "wb", preset=9) as out:
        shutil.copyfileobj(handle, out, _CHUNK)


@dataclass(frozen=True)
class CarryFile:
    """One file to carry.

    Attributes:
        dest: Where ``join`` writes it, relative to its destination folder (``wheels/…``, ``data/…``).
        path: The file that travels (compressed when ``xz``).
        xz: ``path`` is xz-compressed; ``join`` writes it decompressed.
        sha256: Of what ``join`` writes (decompressed).
        size: Bytes ``join`` writes.
        source: Where it came from (name and sha256 of the original), for the record.
    """

    dest: str
    path: Path
    xz: bool
    sha256: str
    size: int
    source: dict[str, Any]


def _cached(cache: Path, src: Path, kind: str, suffix: str, make: Any) -> tuple[Path, Path]:
    """``make(src, plain)`` then xz it, once per source content: (plain file, compressed file) in ``cache``."""
    key = f"{sha256_file(src)[:16]}-{kind}" if src.is_file() else f"{kind}-{src.name}"
    plain, packed = cache / f"{key}{suffix}", cache / f"{key}{suffix}.xz"
    if not (plain.is_file() and packed.is_file()):
        tmp, packed_tmp = plain.with_name(plain.name + ".tmp"), packed.with_name(packed.name + ".tmp")
        try:
            make(src, tmp)
            tmp.replace(plain)
            xz_compress(plain, packed_tmp)
            packed_tmp.replace(packed)
        finally:
            tmp.unlink(missing_ok=True)
            packed_tmp.unlink(missing_ok=True)
    return plain, packed


def carry_files(args: argparse.Namespace, cache: Path) -> list[CarryFile]:
    """The files ``prepare`` was given, made ready to travel; large stable ones first, the project's wheel last."""
    cache.mkdir(parents=True, exist_ok=True)
    files: list[CarryFile] = []

    def source(path: Path) -> dict[str, Any]:
        return {"name": path.name, "sha256": sha256_file(path) if path.is_file() else None}

    def add(dest: str, plain: Path, packed: Path | None, origin: Path) -> None:
        travels = packed if packed is not None else plain
        files.append(
            CarryFile(dest, travels, packed is not None, sha256_file(plain), plain.stat().st_size, source(origin))
        )

    for wheel in args.wheel_xz:
        plain, packed = _cached(cache, wheel, "stored", ".whl", repack_stored)
        add(f"wheels/{wheel.name}", plain, packed, wheel)
    if args.imdb is not None:
        plain, packed = _cached(cache, args.imdb, "labelled", ".tar", labelled_imdb)
        add("data/imdb-labelled.tar", plain, packed, args.imdb)
    if args.embeddings is not None:
        add(f"data/{args.embeddings.name}", args.embeddings, None, args.embeddings)
    if args.tag_data is not None:
        for path in sorted(p for p in args.tag_data.iterdir() if ".conllu" in p.name):
            add(f"data/tag/{path.name}", path, None, path)
    if args.rules is not None:
        add("data/tokenizer.json", args.rules, None, args.rules)
    for wheel in args.wheel:
        add(f"wheels/{wheel.name}", wheel, None, wheel)
    return files


# ------------------------------------------------------------------------------------------------ planning calls


@dataclass(frozen=True)
class Part:
    """A byte range of a carried file, and the call that carries it."""

    call: int
    file: int
    offset: int
    size: int


def plan(sizes: list[int], capacity: int) -> list[Part]:
    """Cut files (in order) into parts that fill calls of ``capacity`` bytes each, the last call partly.

    Args:
        sizes: Bytes of each file as it travels.
        capacity: Bytes one call may carry (call limit minus working tree and margin).

    Returns:
        The parts, in call and file order; calls are numbered from 1.

    Raises:
        ValueError: ``capacity`` is not positive.
    """
    if capacity <= 0:
        raise ValueError(f"no room left in a call (capacity {capacity} bytes): the working tree is too large")
    parts, call, room = [], 1, capacity
    for index, size in enumerate(sizes):
        offset = 0
        while True:
            if room == 0:
                call, room = call + 1, capacity
            take = min(room, size - offset)
            parts.append(Part(call, index, offset, take))
            offset, room = offset + take, room - take
            if offset >= size:
                break
    return parts


def _part_name(dest: str, number: int) -> str:
    return f"{dest.replace('/', '__')}.part{number:02d}"


def write_calls(files: list[CarryFile], parts: list[Part], out: Path, capacity: int) -> dict[str, Any]:
    """Write ``out/c<N>`` folders (parts + SHA256SUMS) and the manifest into the last one; remove older ones."""
    for old in out.glob("c[0-9]*"):
        if old.is_dir() and (old / SUMS).is_file():
            shutil.rmtree(old)
    calls = max(p.call for p in parts)
    entries: list[dict[str, Any]] = [
        {
            "dest": f.dest,
            "xz": f.xz,
            "sha256": f.sha256,
            "bytes": f.size,
            "travels_bytes": f.path.stat().st_size,
            "source": f.source,
            "parts": [],
        }
        for f in files
    ]
    sums: dict[int, list[str]] = {n: [] for n in range(1, calls + 1)}
    for part in parts:
        entry = entries[part.file]
        folder = out / f"c{part.call}"
        folder.mkdir(parents=True, exist_ok=True)
        name = _part_name(entry["dest"] + (".xz" if entry["xz"] else ""), len(entry["parts"]))
        with open(files[part.file].path, "rb") as handle:
            handle.seek(part.offset)
            data = handle.read(part.size)
        (folder / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entry["parts"].append({"call": part.call, "name": name, "sha256": digest, "bytes": part.size})
        sums[part.call].append(f"{digest}  {name}")
    manifest = {
        "format": FORMAT,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "calls": calls,
        "capacity_bytes": capacity,
        "files": entries,
    }
    for call, lines in sums.items():
        folder = out / f"c{call}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMS).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (out / f"c{calls}" / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def call_sequence(out: Path, calls: int, root: Path) -> str:
    """The device calls to make, in order, as text."""
    full, base = out.resolve(), root.resolve()
    where = full.relative_to(base).as_posix() if full.is_relative_to(base) else str(out)
    lines = ["Device calls, back to back (a machine idle for 30 s is given back, and with it the folders sent so far):"]
    for call in range(1, calls + 1):
        last = call == calls
        command = "bash scripts/gpu_proof.sh" if last else "bash scripts/gpu_proof.sh --check-carry"
        timeout = 600 if last else 120
        lines.append(f'  {call}. run(carry=["{where}/c{call}"], command="{command}", timeout_s={timeout})')
    lines += [
        "Each call prints which folders arrived; if one is missing, resend it before the last call.",
        "After the last call: copy the files it returns (files_at) into benchmarks/results/ and commit them.",
        "A rerun on the same warm machine needs only the last call again (after a code change: run this script",
        "again and send only the last folder; the others stay the same while the working tree is under 3 MiB).",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ on the machine


def _folders(carry: Path) -> dict[int, Path]:
    found = {}
    for folder in carry.glob("c[0-9]*"):
        if folder.is_dir() and folder.name[1:].isdigit():
            found[int(folder.name[1:])] = folder
    return dict(sorted(found.items()))


def _verify_sums(folder: Path) -> list[str]:
    """Problems with a call folder's parts (missing, wrong size or digest); empty when all is well."""
    sums = folder / SUMS
    if not sums.is_file():
        return [f"{folder.name}: no {SUMS}"]
    problems = []
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file():
            problems.append(f"{folder.name}/{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{folder.name}/{name}: sha256 differs (a broken transfer; resend {folder.name})")
    return problems


def find_manifest(carry: Path) -> dict[str, Any] | None:
    """The manifest, from whichever call folder holds it (the last one), or ``None``."""
    for folder in reversed(_folders(carry).values()):
        if (folder / MANIFEST).is_file():
            manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return manifest
    return None


def check(carry: Path) -> tuple[list[str], list[str]]:
    """What arrived: (report lines, problems). Missing folders are problems only once the manifest is here."""
    lines, problems = [], []
    folders = _folders(carry)
    for folder in folders.values():
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        own = _verify_sums(folder)
        problems += own
        lines.append(f"{folder.name}: {'ok' if not own else 'BROKEN'} ({size / MIB:.1f} MiB)")
    manifest = find_manifest(carry)
    if manifest is None:
        lines.append(f"{MANIFEST} not here yet: it comes with the last call")
    else:
        missing = [f"c{n}" for n in range(1, manifest["calls"] + 1) if n not in folders]
        problems += [f"{name}: not here (resend it)" for name in missing]
        lines.append(f"all {manifest['calls']} calls here" if not missing else f"missing: {', '.join(missing)}")
    if not folders:
        lines.append(f"no carry folders in {carry}")
    return lines, problems


def join(carry: Path, dest: Path) -> list[Path]:
    """Verify every part, join and decompress each file into ``dest``, verify each file's sha256.

    Returns:
        The files written.

    Raises:
        ValueError: No manifest, a missing or broken part, or a joined file whose sha256 differs.
    """
    manifest = find_manifest(carry)
    if manifest is None:
        raise ValueError(f"no {MANIFEST} in {carry}/c*: the last call's folder has not arrived")
    lines, problems = check(carry)
    if problems:
        raise ValueError("the carried files are incomplete:\n  " + "\n  ".join(problems))
    written = []
    for entry in manifest["files"]:
        target = dest / entry["dest"]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        pieces = [carry / f"c{p['call']}" / p["name"] for p in entry["parts"]]
        with open(tmp, "wb") as out:
            if entry["xz"]:
                with lzma.open(io.BufferedReader(_Concatenated(pieces), _CHUNK)) as stream:
                    shutil.copyfileobj(stream, out, _CHUNK)
            else:
                for piece in pieces:
                    with open(piece, "rb") as handle:
                        shutil.copyfileobj(handle, out, _CHUNK)
        if sha256_file(tmp) != entry["sha256"]:
            tmp.unlink()
            raise ValueError(f"{entry['dest']}: the joined file's sha256 differs from the manifest's")
        tmp.replace(target)
        written.append(target)
    return written


class _Concatenated(io.RawIOBase):
    """The parts of a file read one after another, as one binary stream."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = list(paths)
        self._handle: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._handle is None:
                if not self._paths:
                    return 0
                self._handle = open(self._paths.pop(0), "rb")  # noqa: SIM115 - closed when exhausted
            count = self._handle.readinto(buffer)
            if count:
                return int(count)
            self._handle.close()
            self._handle = None


# ------------------------------------------------------------------------------------------------ command line


def tree_bytes(root: Path) -> int:
    """Bytes of what a device call sends besides the carried folders: tracked and untracked, not ignored, files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    paths = [root / name.decode() for name in listed if name]
    return sum(path.lstat().st_size for path in paths if path.is_symlink() or path.exists())


def _prepare(args: argparse.Namespace) -> int:
    if args.tree_bytes is None:
        args.tree_bytes = tree_bytes(Path.cwd())
    capacity = min(PART_LIMIT, CALL_LIMIT - args.tree_bytes - MARGIN)
    files = carry_files(args, args.cache)
    if not files:
        print("nothing to carry: give --wheel, --wheel-xz, --imdb, --embeddings, --tag-data, --rules", file=sys.stderr)
        return 2
    parts = plan([f.path.stat().st_size for f in files], capacity)
    manifest = write_calls(files, parts, args.out, capacity)
    tree = args.tree_bytes / MIB
    print(f"carried per call: {capacity / MIB:.1f} MiB (at most 60; 64 MiB - working tree {tree:.2f} MiB - margin)")
    for entry in manifest["files"]:
        packed = f", travels as xz {entry['travels_bytes'] / MIB:.1f} MiB" if entry["xz"] else ""
        calls = sorted({p["call"] for p in entry["parts"]})
        print(f"  {entry['dest']}: {entry['bytes'] / MIB:.1f} MiB{packed}; call(s) {calls}")
    total = sum(e["travels_bytes"] for e in manifest["files"])
    print(f"total {total / MIB:.1f} MiB in {manifest['calls']} call(s)")
    print(call_sequence(args.out, manifest["calls"], Path.cwd()))
    return 0


def _check(args: argparse.Namespace) -> int:
    lines, problems = check(args.carry)
    print("\n".join(lines))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _join(args: argparse.Namespace) -> int:
    try:
        written = join(args.carry, args.dest)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="make the call folders on the CPU machine")
    prepare.add_argument("--out", type=Path, default=Path(".device"), help="carry folder (git-ignored)")
    prepare.add_argument("--cache", type=Path, default=Path(".device/cache"), help="repacked/compressed files")
    prepare.add_argument("--tree-bytes", type=int, help="bytes of the tree that travels (default: from git)")
    prepare.add_argument("--wheel", type=Path, action="append", default=[], help="a wheel carried as it is")
    prepare.add_argument("--wheel-xz", type=Path, action="append", default=[], help="a wheel repacked and xz'd")
    prepare.add_argument("--imdb", type=Path, help="aclImdb_v1.tar.gz (or aclImdb/): its labelled reviews")
    prepare.add_argument("--embeddings", type=Path, help="word vectors file")
    prepare.add_argument("--tag-data", type=Path, help="folder of *-train/-dev/-test .conllu(.gz) files")
    prepare.add_argument("--rules", type=Path, help="tokenizer rules (tokenizer.json)")
    prepare.set_defaults(run=_prepare)
    checking = commands.add_parser("check", help="verify the call folders that arrived")
    checking.add_argument("carry", type=Path)
    checking.set_defaults(run=_check)
    joining = commands.add_parser("join", help="join, decompress and verify every carried file")
    joining.add_argument("carry", type=Path)
    joining.add_argument("dest", type=Path)
    joining.set_defaults(run=_join)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
