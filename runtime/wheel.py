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
import json
import keyword
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.version import InvalidVersion, Version

from lstm_onnx import __version__
from lstm_onnx.runtime.archive import bundle_directory
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.card import render_card
from lstm_onnx.runtime.contract import BUNDLE_CONFIG_FILE, MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.load import MODEL_ENTRY_POINTS
from lstm_onnx.runtime.session import SessionConfig

__all__ = ["PACKAGE_BUNDLE_DIR", "build_model_wheel", "check_package_name", "check_package_version"]

# Folder of the package that holds the bundle's files.
PACKAGE_BUNDLE_DIR = "bundle"
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Fixed member times make the same bundle give the same wheel, byte for byte.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_INIT = '''"""{name} {version}: an lstm-onnx model package ({model} {model_version}), made by `lstm-onnx package`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "{version}"
# The bundle shipped inside this package; `lstm_onnx.load("{name}")` finds it through the entry point.
BUNDLE: Path = Path(__file__).resolve().parent / "{bundle_dir}"


def load(**options: Any) -> Any:
    """This package's model: ``lstm_onnx.load(BUNDLE, **options)`` (providers, threads, batch_size, labels, ...)."""
    import lstm_onnx

    return lstm_onnx.load(BUNDLE, **options)
'''


def check_package_name(name: str) -> str:
    """Require a lowercase Python identifier that shadows no standard module and not lstm_onnx itself.

    Raises:
        BundleError: Names the bad value and the rule.
    """
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise BundleError(
            f"Package name {name!r} must be a lowercase Python identifier (letters, digits, underscores; not a "
            "keyword), e.g. 'imdb_sentiment'."
        )
    if name == "lstm_onnx" or name in sys.stdlib_module_names:
        raise BundleError(f"Package name {name!r} would shadow the module of that name; choose another --name.")
    return name


def check_package_version(version: str) -> str:
    """The PEP 440 normal form of ``version`` (``1.0.0-beta`` → ``1.0.0b0``).

    Raises:
        BundleError: ``version`` is not a PEP 440 version.
    """
    try:
        return str(Version(version))
    except InvalidVersion as err:
        raise BundleError(f"Version {version!r} is not a PEP 440 version; give one like 1.0 or 1.2.0rc1.") from err


def _default_name(model_name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", model_name.lower()).lstrip("0123456789") or "model"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def _metadata(name: str, version: str, summary: str, card: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        f"Summary: {summary}\n"
        "Requires-Python: >=3.10\n"
        f"Requires-Dist: lstm-onnx>={__version__}\n"
        "Description-Content-Type: text/markdown\n"
        "\n"
        f"{card}"
    )


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
    return wheel
