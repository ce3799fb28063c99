"""The two JSON files of a model bundle, defined once: ``config.json`` (``BundleConfig``) and ``manifest.json``
(``Manifest``). Every bundle writer builds these dataclasses and writes ``to_dict()``; ``load_bundle`` reads them
back with ``from_dict``.

Unknown keys: both files may carry keys this toolkit does not know (a newer toolkit may add one without breaking
older readers; a change an older reader must understand bumps ``format_version`` instead, which is refused).
``from_dict`` keeps them in ``extra`` and ``to_dict`` writes them back unchanged, so rewriting a bundle (relabel)
never drops them; nothing else reads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.contract import IO_SPECS, MANIFEST_FILE, IOSpec
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.json_text import dump_json
from lstm_onnx.runtime.label_names import label_problem
from lstm_onnx.runtime.tokenizer import TokenizerConfig

__all__ = [
    "CLASSIFY_TASK",
    "BundleConfig",
    "Manifest",
    "bundle_task",
    "file_digest",
    "seal_manifest",
    "sha256_file",
    "split_known",
    "write_json",
]

# Bundles written before tagging existed carry no task anywhere: they are classifiers.
CLASSIFY_TASK = "classify"
_REEXPORT = "run `lstm-onnx export` again"


def split_known(cls: type, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``data`` into the dataclass's own keys and the rest (``extra``); the run directory's files use it too."""
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k in names}, {k: v for k, v in data.items() if k not in names}


@dataclass(frozen=True)
class BundleConfig:
    """``config.json``: what inference needs besides the graph (labels, tokenizer settings, model settings).

    Attributes:
        labels: Label names in class-id order (C >= 2 of them).
        tokenizer: Tokenizer settings (lowercasing, pattern, ``max_length``).
        vocab_size: Number of tokens in ``vocab.txt``.
        model: The model's settings as trained (``ModelConfig`` or the tagger's config, as a dict).
        variant: ``fp32``, ``optimized``, ``int8`` or ``fp16`` (``None``: not recorded; the key is then absent).
        task: ``"tag"`` for a tagging bundle; ``None`` (key absent) for a classifier, as bundles always wrote it.
        tagset: A tagging bundle's tag set (``upos``/``xpos``); ``None`` (key absent) otherwise.
        extra: Keys this toolkit does not know, kept as read (module docstring).
    """

    labels: list[str]
    tokenizer: TokenizerConfig
    vocab_size: int
    model: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    task: str | None = None
    tagset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved_task(self) -> str:
        """The task, ``"classify"`` when the file names none."""
        return self.task or CLASSIFY_TASK

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json`` (keys as bundles have always had them)."""
        data: dict[str, Any] = {} if self.task is None else {"task": self.task}
        data["labels"] = list(self.labels)
        if self.tagset is not None:
            data["tagset"] = self.tagset
        data.update(tokenizer=self.tokenizer.to_dict(), model=dict(self.model), vocab_size=self.vocab_size)
        if self.variant is not None:
            data["variant"] = self.variant
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> BundleConfig:
        """Validate and build from the parsed JSON.

        Raises:
            BundleError: A key is missing or malformed; names the key and ``source``.
        """
        if not isinstance(data, dict):
            raise BundleError(f"{source} must hold a JSON object, got {type(data).__name__}; {_REEXPORT}.")
        own, extra = split_known(cls, data)
        labels = own.get("labels")
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{source}: 'labels' must list at least 2 label strings; {_REEXPORT}.")
        problem = label_problem(labels)
        if problem:
            raise BundleError(f"{source}: {problem}; {_REEXPORT}.")
        size = own.get("vocab_size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise BundleError(f"{source}: 'vocab_size' must be an integer, got {size!r:.60}; {_REEXPORT}.")
        for key in ("model", "tokenizer"):
            if not isinstance(own.get(key, {}), dict):
                raise BundleError(f"{source}: {key!r} must be a JSON object, got {own[key]!r:.60}; {_REEXPORT}.")
        for key in ("variant", "task", "tagset"):
            if own.get(key) is not None and not isinstance(own[key], str):
                raise BundleError(f"{source}: {key!r} must be a string, got {own[key]!r:.60}; {_REEXPORT}.")
        try:
            tokenizer = TokenizerConfig.from_dict(own.get("tokenizer", {}))
        except (TypeError, ValueError) as err:
            raise BundleError(f"{source}: bad 'tokenizer' settings: {err} {_REEXPORT}.") from err
        return cls(
            labels=list(labels),
            tokenizer=tokenizer,
            vocab_size=size,
            model=dict(own.get("model", {})),
            variant=own.get("variant"),
            task=own.get("task"),
            tagset=own.get("tagset"),
            extra=extra,
        )


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: what the bundle is, how it was made, its IO contract and the checksums of its files.

    Attributes:
        format_version: Bundle layout version (``runtime.contract.BUNDLE_FORMAT_VERSION``).
        name: Model name.
        version: Semantic version of the bundle.
        created_at: UTC ISO-8601 time of export.
        versions: Toolkit, python, torch, onnx and onnxruntime versions at export.
        export: ``{opset, exporter_mode, exporter_reason, example_shape, variant}``.
        io: ``IO_SPECS[task].to_manifest(C)``: ``{task, inputs: [{name, dtype, shape}], outputs: [...]}`` (bundles
            from before tagging have no ``task`` here).
        parity: Parity summary (``passed``, tolerances, per-backend results).
        files: ``{file name: {sha256, bytes}}`` for every other file of the bundle.
        metrics: Optional evaluation metrics.
        data: Optional record of the data the model was trained and tested on (names and digests, no paths).
        extra: Keys this toolkit does not know, kept as read (module docstring).
    """

    format_version: int
    name: str
    version: str
    created_at: str
    versions: dict[str, str]
    export: dict[str, Any]
    io: dict[str, Any]
    parity: dict[str, Any]
    files: dict[str, dict[str, Any]]
    metrics: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json``."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> Manifest:
        """Validate and build from the parsed JSON.

        Raises:
            BundleError: A key is missing or has the wrong type; names the key and ``source``.
        """
        if not isinstance(data, dict):
            raise BundleError(f"{source} must hold a JSON object, got {type(data).__name__}; {_REEXPORT}.")
        expected = {
            "format_version": int,
            "name": str,
            "version": str,
            "created_at": str,
            "versions": dict,
            "export": dict,
            "io": dict,
            "parity": dict,
            "files": dict,
        }
        for key, kind in expected.items():
            if key not in data:
                raise BundleError(f"{source} lacks the key {key!r}; {_REEXPORT}.")
            if not isinstance(data[key], kind) or isinstance(data[key], bool):
                raise BundleError(f"{source}: {key!r} must be {kind.__name__}, got {data[key]!r:.60}; {_REEXPORT}.")
        # Nested values readers index into: a wrong type there would surface as a TypeError deep in a check.
        nested: list[tuple[str, Any, bool]] = [
            ("io.task", data["io"].get("task"), isinstance(data["io"].get("task"), (str, type(None)))),
            *(
                (f"io.{kind}", specs, isinstance(specs, list) and all(isinstance(x, dict) for x in specs))
                for kind in ("inputs", "outputs")
                for specs in [data["io"].get(kind, [])]
            ),
            (
                "parity.backends",
                data["parity"].get("backends"),
                isinstance(data["parity"].get("backends"), (dict, type(None))),
            ),
            *((f"files.{name}", entry, isinstance(entry, dict)) for name, entry in data["files"].items()),
            *((key, data.get(key), isinstance(data.get(key), (dict, type(None)))) for key in ("metrics", "data")),
        ]
        for where, value, ok in nested:
            if not ok:
                raise BundleError(f"{source}: {where!r} has the wrong type ({value!r:.60}); {_REEXPORT}.")
        own, extra = split_known(cls, data)
        return cls(**own, extra=extra)

    def io_names(self, kind: str) -> list[str]:
        """Names of the ``inputs`` or ``outputs`` declared in the IO contract."""
        return [str(spec.get("name")) for spec in self.io.get(kind, []) if isinstance(spec, dict)]


def bundle_task(manifest: Manifest, config_task: str | None, source: Path) -> IOSpec:
    """The IO spec of a bundle's task: the manifest's ``io.task``, else ``config.json``'s ``task``, else classify.

    Args:
        manifest: The bundle's manifest.
        config_task: ``BundleConfig.task`` (``None``: the file names none).
        source: The manifest's path, for messages.

    Raises:
        BundleError: The task is unknown, or the two files name different tasks.
    """
    declared = manifest.io.get("task")
    task = declared if declared is not None else (config_task or CLASSIFY_TASK)
    if declared is not None and config_task is not None and declared != config_task:
        raise BundleError(
            f"{source}: the manifest's io.task is {declared!r} but config.json's task is {config_task!r}; "
            f"the files come from different exports, {_REEXPORT}."
        )
    if task not in IO_SPECS:
        raise BundleError(f"{source}: unknown task {task!r} (this toolkit serves {sorted(IO_SPECS)}); {_REEXPORT}.")
    return IO_SPECS[task]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the exporter records it, ``load_bundle`` checks it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> dict[str, Any]:
    """A manifest ``files`` entry: ``{"sha256": hex, "bytes": int}`` of one file."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Pretty JSON with a final newline, never NaN or Infinity; bundle files are written into a staging directory
    renamed whole."""
    path.write_text(dump_json(data) + "\n", encoding="utf-8")


def seal_manifest(staging: Path, manifest: Manifest) -> Manifest:
    """Record the checksum of every other file in ``staging`` and write ``manifest.json`` there.

    Returns:
        The manifest as written.
    """
    files = {p.name: file_digest(p) for p in sorted(staging.iterdir()) if p.name != MANIFEST_FILE}
    sealed = replace(manifest, files=files)
    write_json(staging / MANIFEST_FILE, sealed.to_dict())
    return sealed
