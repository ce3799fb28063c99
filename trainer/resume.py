"""What ``train --resume`` may continue, shared by the classifier's and the tagger's training loops.

A run directory gets its ``config.json`` before the first epoch and its checkpoint after each one, so Ctrl-C in the
first epoch leaves a run with nothing to continue; ``--resume`` starts such a run over (the same seed gives the
uninterrupted result). A resumed run ends by testing the kept weights, so it must get the test data it was started
with: the run records them by name and digest (never by path), so they are checked, not found again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lstm_onnx.runtime.contract import TOKENIZER_RULES_FILE
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, load_rules
from lstm_onnx.trainer.checkpoint import state_path
from lstm_onnx.trainer.progress import TrainProgress
from lstm_onnx.trainer.run_format import CONFIG_FILE

__all__ = ["check_test_data", "continues_run", "pinned_rules"]

# The keys of a data record (runtime.provenance.describe_data) that say which texts they are.
_IDENTITY = ("name", "sha256", "listing_sha256", "split", "texts")


def continues_run(run_dir: Path, resume: bool, progress: TrainProgress) -> bool:
    """Whether training continues the run in ``run_dir`` from its checkpoint (else it starts a run there).

    Args:
        run_dir: The run directory (``--out``).
        resume: ``--resume`` was given.
        progress: Told when a run with no finished epoch is started over.

    Returns:
        ``True`` to load the checkpoint; ``False`` to start from epoch 1 (a new run, or ``--resume`` of a run
        interrupted before its first checkpoint).

    Raises:
        BundleError: ``run_dir`` already holds a run and ``resume`` is off.
    """
    started = (run_dir / CONFIG_FILE).is_file()
    checkpointed = state_path(run_dir).exists()
    if resume and started and not checkpointed:
        # Nothing to continue (no epoch finished): the same seed makes starting over the uninterrupted run.
        progress.on_stage(f"{run_dir} has no finished epoch to resume; starting the run from epoch 1")
        return False
    if not resume and (started or checkpointed):
        raise BundleError(f"{run_dir} already holds a training run; pass --resume or choose another --out.")
    return resume


def check_test_data(run_dir: Path, recorded: Any, given: Any, hint: str) -> None:
    """Refuse to resume a run without the test data it was started with, or with other test data.

    Args:
        run_dir: The run being resumed.
        recorded: The test data as its ``config.json`` records them: a ``describe_data`` record, a file name (a
            tagging run), or ``None`` (the run had none; any test data may be added).
        given: The same kind of record of the test data given now, or ``None``.
        hint: How to give the test data again, e.g. ``"pass it again with --test-data"``.

    Raises:
        BundleError: Test data recorded but not given, or given but different; names both and the fix.
    """
    if recorded is None:
        return
    if given is None:
        raise BundleError(
            f"Cannot resume {run_dir}: it was started with test data {_describe(recorded)}, and without them the "
            f"resumed run would end with no test metrics; {hint}, or start a new run in another --out."
        )
    if _identity(given) != _identity(recorded):
        raise BundleError(
            f"Cannot resume {run_dir}: the test data {_describe(given)} differ from the {_describe(recorded)} it was "
            f"started with; {hint}, or start a new run in another --out."
        )


def _identity(record: Any) -> Any:
    if isinstance(record, dict):
        return {key: record.get(key) for key in _IDENTITY}
    return record


def _describe(record: Any) -> str:
    if not isinstance(record, dict):
        return repr(str(record))
    digest = record.get("sha256") or record.get("listing_sha256")
    details = [f"{record['texts']} texts" if "texts" in record else None, f"sha256 {digest[:12]}…" if digest else None]
    shown = ", ".join(d for d in details if d)
    return f"{record.get('name')!r}" + (f" ({shown})" if shown else "")


def pinned_rules(run_dir: Path, resume: bool, given: dict[str, Any] | None) -> dict[str, Any]:
    """The tokenizer rules a run pins: a resumed run's own, else ``given``, else the installed spaCy's.

    ``given`` (``--tokenizer-rules``: the ``tokenizer.json`` of a run or bundle made where spaCy is installed) lets a
    machine without spaCy train: the rules are all training needs of it.

    Args:
        run_dir: The run directory.
        resume: The run continues from its checkpoint (its ``tokenizer.json`` exists then).
        given: Rules from ``load_rules``, or ``None``.

    Returns:
        The rules to tokenize with and save in the run.

    Raises:
        BundleError: A resumed run pinned other rules than ``given``.
        MissingDependencyError: Neither pinned nor given rules, and spaCy is not installed.
    """
    path = run_dir / TOKENIZER_RULES_FILE
    if resume and path.is_file():
        pinned = load_rules(path)
        if given is not None and given != pinned:
            raise BundleError(
                f"Cannot resume {run_dir}: the given tokenizer rules differ from the ones it pinned ({path}); "
                "resume without --tokenizer-rules, or with that file."
            )
        return pinned
    return given if given is not None else dump_spacy_rules()
