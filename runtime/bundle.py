"""Read a model bundle and prove it is whole: files, checksums, format version, vocabulary, IO contract.

A bundle is a directory written by ``lstm-onnx export``: ``model.onnx``, ``vocab.txt``, ``config.json``,
``tokenizer.json``, ``README.md`` and ``manifest.json`` (identity, versions, IO contract, parity, checksums).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lstm_onnx import __version__
from lstm_onnx.runtime.archive import bundle_directory
from lstm_onnx.runtime.bundle_format import BundleConfig, Manifest, bundle_task, sha256_file
from lstm_onnx.runtime.contract import (
    BUNDLE_CONFIG_FILE,
    BUNDLE_FORMAT_VERSION,
    CHAR_IDS,
    CHAR_VOCAB_FILE,
    INPUT_IDS,
    LABELS_AXIS,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_RULES_FILE,
    VOCAB_FILE,
)
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import MAX_JSON_FILE_BYTES, parse_json, read_text_capped
from lstm_onnx.runtime.onnx_graph import UNTRACEABLE, lookup_tables
from lstm_onnx.runtime.session import ModelSession, SessionConfig, create_session
from lstm_onnx.runtime.tokenizer import Tokenizer, Vocab
from lstm_onnx.runtime.tokenizer_rules import load_rules

__all__ = [
    "REQUIRED_FILES",
    "Bundle",
    "BundleConfig",
    "Manifest",
    "check_session_io",
    "describe_bundle",
    "load_bundle",
    "sha256_file",
]

# README.md (the model card) is optional; everything else is needed to predict.
REQUIRED_FILES = (MODEL_FILE, VOCAB_FILE, BUNDLE_CONFIG_FILE, TOKENIZER_RULES_FILE)
_PARITY_SUMMARY_KEYS = ("status", "max_abs_diff", "label_agreement", "texts", "reason")
_REEXPORT = "run `lstm-onnx export` again"
_ORT_TYPES = {
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
}


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle.

    Attributes:
        path: The bundle directory.
        manifest: Its manifest.
        labels: Class labels in id order (C of them).
        vocab: Token ↔ id mapping.
        tokenizer: Tokenizer built from the bundle's settings and rules (no spaCy import).
        settings: ``config.json``, parsed.
        session: The ONNX Runtime session, IO contract checked.
        char_vocab: A tagging bundle's character vocabulary (``chars.txt``); ``None`` for a classifier.
    """

    path: Path
    manifest: Manifest
    labels: list[str]
    vocab: Vocab
    tokenizer: Tokenizer
    settings: BundleConfig
    session: ModelSession
    char_vocab: Vocab | None = None

    @property
    def config(self) -> dict[str, Any]:
        """``config.json`` as its JSON object (``settings.to_dict()``)."""
        return self.settings.to_dict()

    @property
    def task(self) -> str:
        """``"classify"`` or ``"tag"``."""
        return bundle_task(self.manifest, self.settings.task, self.path / MANIFEST_FILE).task

    @property
    def max_length(self) -> int | None:
        """Token limit saved with the tokenizer settings (``None``: none)."""
        return self.tokenizer.config.max_length


def load_bundle(path: Path | str, session_config: SessionConfig | None = None) -> Bundle:
    """Load a bundle directory and check it completely before anything is predicted.

    Checks, in order: the directory and ``manifest.json`` exist; ``format_version`` is supported (a newer
    toolkit's bundle warns); the directory holds only regular files listed in the manifest (no symlinks, no
    folders, no unlisted file such as an ONNX external-data file); every required file is present and listed;
    every listed file's sha256 matches; ``config.json``, ``vocab.txt`` and ``tokenizer.json`` parse and agree
    (vocabulary size, and the model's embedding table has one row per token); the tokenizer's regexes are the
    exporter's or pass the backtracking guard; the session's inputs and outputs match the manifest's IO contract
    and the number of labels.

    Args:
        path: The bundle directory, or a ``.zip``/``.tar.gz`` of one (extracted safely into a temporary directory
            that is removed once the bundle is in memory; ``Bundle.path`` is then the archive).
        session_config: Providers and threads for the session (default: ``SessionConfig()``, provider ``auto``).

    Returns:
        The bundle with its session.

    Raises:
        BundleError: Something is missing, changed or inconsistent; the message names the file and the fix.
        ProviderError: The requested provider cannot run here.
    """
    if Path(path).is_file():
        return _load_archive(Path(path), session_config)
    root = Path(path)
    if not root.is_dir():
        raise BundleError(
            f"Bundle directory {root} does not exist or is not a directory; give the path `lstm-onnx export` wrote."
        )
    manifest = _read_manifest(root / MANIFEST_FILE)
    _check_files(root, manifest)
    config = BundleConfig.from_dict(_read_json(root / BUNDLE_CONFIG_FILE), root / BUNDLE_CONFIG_FILE)
    labels = config.labels
    vocab = Vocab.load(root / VOCAB_FILE)
    sizes = {"config.json vocab_size": config.vocab_size}
    if "vocab_size" in config.model:
        sizes["config.json model.vocab_size"] = config.model["vocab_size"]
    for where, size in sizes.items():
        if size != len(vocab):
            raise BundleError(
                f"{root / VOCAB_FILE} has {len(vocab)} tokens but {where} is {size}; "
                f"the files come from different runs, {_REEXPORT}."
            )
    graph = (root / MODEL_FILE).read_bytes()
    _check_lookup_tables(graph, INPUT_IDS, root / VOCAB_FILE, len(vocab))
    try:
        tokenizer = Tokenizer(config.tokenizer, rules=load_rules(root / TOKENIZER_RULES_FILE))
    except ValueError as err:
        raise BundleError(f"{root / TOKENIZER_RULES_FILE} cannot be used: {err} {_REEXPORT}.") from err
    session = create_session(root / MODEL_FILE, session_config or SessionConfig())
    check_session_io(manifest, session, len(labels), root, config.task)
    # Everything is read now: an archive's temporary directory is gone once this returns.
    task = bundle_task(manifest, config.task, root / MANIFEST_FILE).task  # the one the session was checked for
    chars = Vocab.load(root / CHAR_VOCAB_FILE) if task == "tag" else None
    if chars is not None:
        _check_lookup_tables(graph, CHAR_IDS, root / CHAR_VOCAB_FILE, len(chars))
    return Bundle(root, manifest, list(labels), vocab, tokenizer, config, session, chars)


def _check_lookup_tables(graph: bytes, ids_input: str, vocab_file: Path, size: int) -> None:
    """Require every table the graph looks ``ids_input`` up in to hold exactly one row per vocabulary entry.

    A shorter table makes ONNX Runtime fail on every text holding a high id; a table the graph computes instead of
    storing (it cannot be measured here) is refused rather than trusted.

    Raises:
        BundleError: A table has another size, or is computed; names both files.
    """
    model = vocab_file.parent / MODEL_FILE
    table, what = ("embedding table", "tokens") if ids_input == INPUT_IDS else ("character table", "characters")
    for rows in lookup_tables(graph, ids_input) or []:
        if rows == UNTRACEABLE:
            raise BundleError(
                f"The {table} of {model} ({ids_input}) is computed by the graph instead of stored (no initializer "
                f"or Constant behind its Gather), so its size cannot be checked against {vocab_file}; {_REEXPORT}."
            )
        if rows != size:
            raise BundleError(
                f"{vocab_file} has {size} {what} but the {table} of {model} has {rows} rows; the files come from "
                f"different runs, {_REEXPORT}."
            )


def _load_archive(archive: Path, session_config: SessionConfig | None) -> Bundle:
    """Load a bundle from a ``.zip``/``.tar.gz``: extracted safely, loaded into memory, the extraction removed."""
    with bundle_directory(archive) as root:
        try:
            bundle = load_bundle(root, session_config)
        except BundleError as err:
            # Name the archive, not the temporary directory the user never saw.
            message = str(err).replace(f"{root}/", f"{archive}:").replace(str(root), str(archive))
            raise BundleError(message if str(archive) in message else f"In {archive}: {message}") from err
    return replace(bundle, path=archive)


def check_session_io(
    manifest: Manifest, session: ModelSession, num_labels: int, root: Path, config_task: str | None = None
) -> None:
    """Require the graph's inputs/outputs to be the task's IO spec and the manifest's, and the logits width to be
    the label count.

    The task is the manifest's ``io.task``, else ``config.json``'s ``task``, else ``"classify"`` (older bundles).

    Raises:
        BundleError: The task is unknown, or names, dtypes or the number of classes differ.
    """
    model = root / MODEL_FILE
    spec = bundle_task(manifest, config_task, root / MANIFEST_FILE)
    inputs = {i.name: i for i in session.session.get_inputs()}
    outputs = {o.name: o for o in session.session.get_outputs()}
    for kind, declared, required, actual in (
        ("inputs", manifest.io_names("inputs"), spec.input_names, inputs),
        ("outputs", manifest.io_names("outputs"), spec.output_names, outputs),
    ):
        if sorted(declared) != sorted(actual):
            raise BundleError(
                f"{model} has {kind} {sorted(actual)} but {root / MANIFEST_FILE} declares {sorted(declared)}; "
                f"the model and manifest do not belong together, {_REEXPORT}."
            )
        if sorted(required) != sorted(actual):
            raise BundleError(
                f"{model} has {kind} {sorted(actual)} but a {spec.task!r} model takes {sorted(required)}; {_REEXPORT}."
            )
    for tensor in (*spec.inputs, *spec.outputs):
        node = inputs.get(tensor.name) or outputs.get(tensor.name)
        want = _ORT_TYPES[tensor.dtype]
        if node is not None and node.type != want:
            raise BundleError(
                f"{model}: {tensor.name} is {node.type} but a {spec.task!r} model's {tensor.name} is {tensor.dtype}; "
                f"{_REEXPORT}."
            )
        if node is not None and node.shape is not None and len(node.shape) != len(tensor.dims):
            raise BundleError(
                f"{model}: {tensor.name} has {len(node.shape)} axes but a {spec.task!r} model's has "
                f"{len(tensor.dims)}; {_REEXPORT}."
            )
        # A fixed size where the contract has a dynamic axis (a batch of 2**62 rows, say) fails every real call.
        declared = list(node.shape or []) if node is not None else []
        for axis, (size, axis_name) in enumerate(zip(declared, tensor.dims, strict=False)):
            if isinstance(size, int) and isinstance(axis_name, str) and axis_name != LABELS_AXIS:
                raise BundleError(
                    f"{model}: {tensor.name} has the fixed size {size} on axis {axis}, where a {spec.task!r} model has "
                    f"the dynamic axis {axis_name!r}; {_REEXPORT}."
                )
    logits = outputs[spec.outputs[0].name]
    width = logits.shape[-1] if logits.shape else None
    if isinstance(width, int) and width != num_labels:
        raise BundleError(
            f"{model} outputs {width} logits per {'token' if spec.task == 'tag' else 'text'} but "
            f"{root / BUNDLE_CONFIG_FILE} has {num_labels} labels; {_REEXPORT}."
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = parse_json(read_text_capped(path, MAX_JSON_FILE_BYTES))
    except FileNotFoundError as err:
        raise BundleError(f"Bundle file {path} is missing; {_REEXPORT}.") from err
    except ValueError as err:  # bad JSON or UTF-8, a 5,000-digit number, absurd nesting, over the size cap
        raise BundleError(f"Bundle file {path} is not a readable JSON file ({str(err)[:200]}); {_REEXPORT}.") from err
    if not isinstance(data, dict):
        raise BundleError(f"Bundle file {path} must hold a JSON object; {_REEXPORT}.")
    return data


def _read_manifest(path: Path) -> Manifest:
    if not path.exists():
        raise BundleError(
            f"{path} is missing: {path.parent} is not a model bundle. Give the directory `lstm-onnx export` wrote."
        )
    manifest = Manifest.from_dict(_read_json(path), path)
    if manifest.format_version > BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format_version {manifest.format_version} is newer than this toolkit reads "
            f"(<= {BUNDLE_FORMAT_VERSION}); upgrade lstm-onnx (pip install -U lstm-onnx)."
        )
    if manifest.format_version < 1:
        raise BundleError(
            f"{path}: format_version {manifest.format_version} is invalid "
            f"(expected 1..{BUNDLE_FORMAT_VERSION}); {_REEXPORT}."
        )
    made_by = manifest.versions.get("toolkit")
    ours = __version__
    if isinstance(made_by, str) and _semver(made_by) > _semver(ours):
        warnings.warn(
            f"{path.parent} was made by lstm-onnx {made_by}, newer than this {ours}; it should load, but upgrade "
            "lstm-onnx if anything looks wrong.",
            UserWarning,
            stacklevel=3,
        )
    return manifest


def _semver(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("-")[0].split(".")[:3]:
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)


def _check_files(root: Path, manifest: Manifest) -> None:
    # ONNX Runtime reads external-data files named inside model.onnx, and a symlink can point anywhere: a bundle
    # is exactly its listed regular files, so nothing unchecked can change what the model computes.
    for item in sorted(root.iterdir()):
        if item.is_symlink():
            raise BundleError(f"{item} is a symbolic link; a bundle holds regular files only, {_REEXPORT}.")
        if item.name != MANIFEST_FILE and item.name not in manifest.files:
            raise BundleError(
                f"{item} is not listed in {MANIFEST_FILE}; a bundle holds only the files its manifest lists "
                f"(remove it, or {_REEXPORT})."
            )
        if not item.is_file():
            raise BundleError(f"{item} is not a regular file; {_REEXPORT}.")
    for name in REQUIRED_FILES:
        if not (root / name).is_file():
            raise BundleError(f"Bundle file {root / name} is missing; the bundle is incomplete, {_REEXPORT}.")
        if name not in manifest.files:
            raise BundleError(f"{root / MANIFEST_FILE} has no checksum for {name}; {_REEXPORT}.")
    for name, entry in sorted(manifest.files.items()):
        file = root / name
        if Path(name).name != name:
            raise BundleError(f"{root / MANIFEST_FILE} lists {name!r}, which is not a plain file name; {_REEXPORT}.")
        if not file.is_file():
            raise BundleError(f"Bundle file {file} is listed in {MANIFEST_FILE} but missing; {_REEXPORT}.")
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(expected, str):
            raise BundleError(f"{root / MANIFEST_FILE} has no sha256 for {name}; {_REEXPORT}.")
        got = sha256_file(file)
        if got != expected:
            raise BundleError(
                f"Checksum mismatch for {name}: expected sha256 {expected[:12]}…, got {got[:12]}…. "
                f"The file changed after export; {_REEXPORT}."
            )


def describe_bundle(bundle: Bundle) -> dict[str, Any]:
    """What ``lstm-onnx info`` shows: identity, versions, export settings, IO, parity summary, providers.

    Args:
        bundle: A loaded bundle.

    Returns:
        A JSON-able dict.
    """
    import onnxruntime as ort

    from lstm_onnx.runtime.session import probe_cuda

    m = bundle.manifest
    parity = m.parity
    usable, reason = probe_cuda(bundle.session.config)
    return {
        "path": str(bundle.path),
        "name": m.name,
        "version": m.version,
        "created_at": m.created_at,
        "format_version": m.format_version,
        "variant": m.export.get("variant", bundle.settings.variant),
        "labels": list(bundle.labels),
        "vocab_size": len(bundle.vocab),
        "max_length": bundle.max_length,
        "max_chars": bundle.tokenizer.config.max_chars,
        "versions": dict(m.versions),
        "tokenizer_rules_spacy_version": bundle.tokenizer.rules.get("spacy_version"),
        "export": dict(m.export),
        "io": m.io,
        "parity": {
            "passed": parity.get("passed"),
            "atol": parity.get("atol"),
            "rtol": parity.get("rtol"),
            "backends": {
                name: {
                    k: v for k, v in b.items() if k in ("status", "max_abs_diff", "label_agreement", "texts", "reason")
                }
                if isinstance(b, dict)
                else b
                for name, b in (parity.get("backends") or {}).items()
            },
        },
        "metrics": m.metrics or {},
        "files": {name: entry.get("bytes") for name, entry in m.files.items()},
        "providers": {
            "onnxruntime": ort.__version__,
            "available": list(ort.get_available_providers()),
            "cuda_usable": usable,
            "cuda_note": reason,
            "session": bundle.session.provider,
        },
    }
