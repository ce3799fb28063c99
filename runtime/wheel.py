"""``lstm-onnx package``: a bundle as a pip-installable, pure-Python wheel, the way ``spacy package`` ships a pipeline.

The wheel (PEP 427, written directly with ``zipfile``) holds one module, ``NAME``, with the bundle inside it and two
names: ``BUNDLE`` (the bundle directory's ``Path``) and ``load(**options)``. It registers ``NAME = NAME:BUNDLE`` in
the ``lstm_onnx.models`` entry-point group, so after ``pip install`` the model loads by name, offline:
``lstm_onnx.load("NAME")`` (``runtime.load.resolve_bundle`` reads that group). Needs no torch: a runtime install
can package a bundle it received.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import keyword
import os
import re
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lstm_onnx import __version__
from lstm_onnx.runtime.archive import bundle_directory
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.load import MODEL_ENTRY_POINTS, installed_models
from lstm_onnx.runtime.session import SessionConfig

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_VERSION_CHARS",
    "PACKAGE_BUNDLE_DIR",
    "build_model_wheel",
    "check_package_name",
    "check_package_version",
]

# Folder of the package that holds the bundle's files.
PACKAGE_BUNDLE_DIR = "bundle"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Longest name and version accepted: the wheel's file name must stay far below file-system limits (255 bytes).
MAX_NAME_CHARS = 64
MAX_VERSION_CHARS = 64
# Control characters and line/paragraph separators: a METADATA header is one line.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Fixed member times make the same bundle give the same wheel, byte for byte.
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Only the checked name and the normalised version are written into code; text from the bundle (its model name and
# version) goes in as repr() literals, so no bundle can put code into the module.
_INIT = '''"""{name} {version}: an lstm-onnx model package (the model MODEL), made by `lstm-onnx package`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "{version}"
# The packaged model's name and version, as its manifest.json records them.
MODEL: tuple[str, str] = ({model!r}, {model_version!r})
# The bundle shipped inside this package; `lstm_onnx.load("{name}")` finds it through the entry point.
BUNDLE: Path = Path(__file__).resolve().parent / "{bundle_dir}"


def load(**options: Any) -> Any:
    """This package's model: ``lstm_onnx.load(BUNDLE, **options)`` (providers, threads, batch_size, labels, ...)."""
    import lstm_onnx

    return lstm_onnx.load(BUNDLE, **options)
'''


def _taken_by(name: str) -> str | None:
    """What else in this environment answers to ``name``: an installed distribution or an importable module (an
    installed lstm-onnx model package of that name is no conflict: it is the model being repackaged)."""
    if name in installed_models():
        return None
    wanted = canonicalize_name(name)
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"] or "") == wanted:
            return f"the installed distribution {dist.metadata['Name']!r}"
    if importlib.util.find_spec(name) is not None:
        return f"the importable module {name!r}"
    return None


def check_package_name(name: str) -> str:
    """Require a short lowercase Python identifier that names nothing else: no standard module, not lstm_onnx, no
    distribution or module installed here (``pip install`` of the wheel would replace or shadow it).

    Raises:
        BundleError: Names the bad value and the rule.
    """
    if not _NAME.fullmatch(name) or keyword.iskeyword(name) or len(name) > MAX_NAME_CHARS:
        raise BundleError(
            f"Package name {name!r} must be a lowercase Python identifier of at most {MAX_NAME_CHARS} characters "
            "(a letter, then letters, digits, underscores; not a keyword), e.g. 'imdb_sentiment'."
        )
    if name == "lstm_onnx" or name in sys.stdlib_module_names:
        raise BundleError(f"Package name {name!r} would shadow the module of that name; choose another --name.")
    taken = _taken_by(name)
    if taken is not None:
        raise BundleError(
            f"Package name {name!r} is already {taken} here; installing the model under that name would replace or "
            "shadow it. Choose another --name."
        )
    return name


def check_package_version(version: str) -> str:
    """The PEP 440 normal form of ``version`` (``1.0.0-beta`` → ``1.0.0b0``).

    Raises:
        BundleError: ``version`` is not a PEP 440 version.
    """
    try:
        normal = str(Version(version))
    except InvalidVersion as err:
        raise BundleError(f"Version {version!r} is not a PEP 440 version; give one like 1.0 or 1.2.0rc1.") from err
    if len(normal) > MAX_VERSION_CHARS:
        raise BundleError(f"Version {normal!r} is longer than {MAX_VERSION_CHARS} characters; give a shorter one.")
    return normal


def _default_name(model_name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", model_name.lower()).lstrip("0123456789") or "model"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _one_line(text: str) -> str:
    """``text`` fit for a METADATA header: line breaks and control characters (from the bundle) become spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


def _metadata(name: str, version: str, summary: str, card: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        f"Summary: {_one_line(summary)}\n"
        "Requires-Python: >=3.10\n"
        f"Requires-Dist: lstm-onnx>={__version__}\n"
        "Description-Content-Type: text/markdown\n"
        "\n"
        f"{card}"
    )


def _write_zip(files: dict[str, bytes], out_dir: Path, wheel: Path) -> None:
    """Write ``files`` as the zip ``wheel`` through a temporary file renamed in, so no half-written wheel is left."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{wheel.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, data in files.items():
                member = zipfile.ZipInfo(path, _EPOCH)
                member.external_attr = 0o644 << 16
                member.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(member, data)
        os.replace(tmp_name, wheel)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def build_model_wheel(
    bundle: Path | str,
    out_dir: Path | str,
    *,
    name: str | None = None,
    version: str | None = None,
    force: bool = False,
) -> Path:
    """Build ``NAME-VERSION-py3-none-any.whl`` carrying a verified bundle.

    The bundle is loaded and checked completely first (files, checksums, IO contract), so only a sound bundle is
    packaged; only the files its manifest lists (and the manifest) go into the wheel.

    Args:
        bundle: A bundle directory, or a ``.zip``/``.tar.gz`` of one.
        out_dir: Where the wheel goes (created).
        name: Module and distribution name (default: the bundle's name, made an identifier).
        version: PEP 440 version (default: the bundle's version).
        force: Replace a wheel of the same name.

    Returns:
        The wheel's path.

    Raises:
        BundleError: The bundle is broken, the name or version is invalid, or the wheel exists without ``force``.
    """
    with bundle_directory(bundle) as root:
        loaded = load_bundle(root, SessionConfig(providers="cpu"))
        manifest = loaded.manifest
        name = check_package_name(name if name is not None else _default_name(manifest.name))
        version = check_package_version(version if version is not None else manifest.version)
        out_dir = Path(out_dir)
        wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
        if wheel.exists() and not force:
            raise BundleError(f"{wheel} already exists; pass --force to replace it, or give another --version.")
        files = {f"{name}/{PACKAGE_BUNDLE_DIR}/{f}": (root / f).read_bytes() for f in sorted(manifest.files)}
        files[f"{name}/{PACKAGE_BUNDLE_DIR}/{MANIFEST_FILE}"] = (root / MANIFEST_FILE).read_bytes()
        config = json.loads((root / BUNDLE_CONFIG_FILE).read_text(encoding="utf-8"))
    init = _INIT.format(
        name=name, version=version, model=manifest.name, model_version=manifest.version, bundle_dir=PACKAGE_BUNDLE_DIR
    )
    files[f"{name}/__init__.py"] = init.encode("utf-8")
    files[f"{name}/py.typed"] = b""
    info = f"{name}-{version}.dist-info"
    summary = f"lstm-onnx model package: {manifest.name} {manifest.version} ({', '.join(loaded.labels)})"
    files[f"{info}/METADATA"] = _metadata(name, version, summary, render_card(manifest, config, name)).encode("utf-8")
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: lstm-onnx {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    files[f"{info}/entry_points.txt"] = f"[{MODEL_ENTRY_POINTS}]\n{name} = {name}:BUNDLE\n".encode()
    files[f"{info}/top_level.txt"] = f"{name}\n".encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode("utf-8")

    try:
        _write_zip(files, out_dir, wheel)
    except OSError as err:  # an unwritable, full or odd --out: the user's to fix, so one line, not a traceback
        raise BundleError(f"Cannot write {wheel}: {err.strerror or err}. Choose a writable --out.") from err
    return wheel
