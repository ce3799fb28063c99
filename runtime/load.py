"""``lstm_onnx.load``: one call from a bundle (directory, archive or installed model package) to a ready model.

A model package made by ``lstm-onnx package`` registers its bundle under the ``lstm_onnx.models`` entry-point group
(``name = module:BUNDLE``, where ``BUNDLE`` is the bundle directory's ``Path``), so an installed model loads by name,
offline, the way ``spacy.load("en_core_web_sm")`` does.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.contract import MANIFEST_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.predictor import DEFAULT_BATCH_SIZE, TextClassifier
from lstm_onnx.runtime.relabel import LabelNames
from lstm_onnx.runtime.session import runtime_session_config
from lstm_onnx.runtime.tagger import TokenTagger

__all__ = ["MODEL_ENTRY_POINTS", "installed_models", "load", "resolve_bundle"]

# Entry-point group under which installed model packages register their bundle directory.
MODEL_ENTRY_POINTS = "lstm_onnx.models"


def installed_models() -> dict[str, str]:
    """Model packages installed in this environment.

    Returns:
        ``{name: "module:attribute"}`` for every entry point of the ``lstm_onnx.models`` group.
    """
    return {ep.name: ep.value for ep in metadata.entry_points(group=MODEL_ENTRY_POINTS)}


def resolve_bundle(source: str | Path) -> Path:
    """Where a bundle is: an existing path as given, else the bundle of the installed model package of that name.

    A ``str`` naming both an existing path and an installed model resolves to the path when it is a bundle (a
    directory holding ``manifest.json``, or a file), else to the installed model.

    Args:
        source: A bundle directory, a ``.zip``/``.tar.gz`` of one, or the name of an installed model package.

    Returns:
        The bundle's path (a directory or an archive).

    Raises:
        BundleError: Neither a path nor an installed model has that name, the name is empty, or two installed
            packages register the name.
    """
    if not isinstance(source, (str, Path)):
        raise TypeError(f"A bundle is named by a path or an installed model name, got {type(source).__name__}.")
    if isinstance(source, str) and not source.strip():
        raise BundleError(
            f"{source!r} names no bundle; give a bundle directory, a .zip/.tar.gz of one, or an installed model's name."
        )
    path = Path(source)
    if isinstance(source, Path):
        return path
    matches = [ep for ep in metadata.entry_points(group=MODEL_ENTRY_POINTS) if ep.name == source]
    # A path wins, unless it is no bundle and an installed model has the name: `load("my_model")` must not stop at
    # the folder of that name a project happens to hold (its sources, say).
    if path.exists() and (not matches or path.is_file() or (path / MANIFEST_FILE).exists()):
        return path
    if not matches:
        known = ", ".join(sorted(installed_models())) or "none"
        raise BundleError(
            f"No bundle at {source!r} and no installed model of that name (installed models: {known}). "
            "Give a bundle directory or archive, or `pip install` a package made by `lstm-onnx package`."
        )
    if len({ep.value for ep in matches}) > 1:
        # Two distributions claim the name: picking one by install order would serve a model nobody chose.
        owners = sorted(f"{ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})" for ep in matches)
        raise BundleError(
            f"Installed model name {source!r} is registered by {len(matches)} packages: {', '.join(owners)}. "
            "Uninstall all but one, or load the bundle by its path."
        )
    try:
        located = matches[0].load()
    except (ImportError, AttributeError) as err:  # AttributeError: another module of that name came first
        raise BundleError(
            f"Installed model {source!r} cannot be imported ({err}); reinstall it, and check that no folder or module "
            f"named {source!r} in the working directory shadows it."
        ) from err
    if not isinstance(located, (str, Path)):
        raise BundleError(
            f"Installed model {source!r} registers {matches[0].value!r}, which is not a bundle path; reinstall it."
        )
    return Path(located)


def load(
    source: str | Path,
    *,
    providers: str = "auto",
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_length: int | None = None,
    truncate: bool = False,
    max_chars: int | None = None,
    labels: LabelNames | None = None,
) -> TextClassifier | TokenTagger:
    """Load a bundle, check it completely, and return the model for its task.

    Args:
        source: A bundle directory, a ``.zip``/``.tar.gz`` of one, or the name of an installed model package.
        providers: ``"auto"``, ``"cpu"`` or ``"cuda"`` (``cuda`` never falls back silently).
        threads: ONNX Runtime intra-op threads for every call (``None``: 1, large batches cut into 2 concurrent parts).
        batch_size: Most texts per session call.
        max_length: Token limit; ``None`` uses the bundle's.
        truncate: Cut over-long texts to ``max_length`` tokens (``max_chars`` characters) instead of raising.
        max_chars: Character limit per text, checked before tokenizing; ``None`` uses the bundle's.
        labels: Rename the labels for this model only: every name in id order, or ``{old: new}``.

    Returns:
        A ``TextClassifier`` for a classification bundle, a ``TokenTagger`` for a tagging bundle (``config.json``
        ``"task": "tag"``; ``max_chars`` and ``truncate`` apply to its raw texts, ``max_length`` does not).

    Raises:
        BundleError: Nothing to load there, or the bundle is incomplete, changed or inconsistent.
        ProviderError: The requested provider cannot run here.
        MissingDependencyError: No ONNX Runtime is installed.
        LabelError: ``labels`` does not fit the bundle's labels.
    """
    session = runtime_session_config(providers, threads)
    # Load and check the bundle once (archives included), then hand it to the model for its task.
    bundle = load_bundle(resolve_bundle(source), session)
    if bundle.task == "tag":
        return TokenTagger(bundle, batch_size=batch_size, max_chars=max_chars, truncate=truncate)
    return TextClassifier.load(
        bundle, batch_size=batch_size, max_length=max_length, truncate=truncate, max_chars=max_chars, labels=labels
    )
