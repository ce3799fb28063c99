"""What ``train --resume`` may continue, shared by the classifier's and the tagger's training loops.

A run directory gets its ``config.json`` before the first epoch and its checkpoint after each one, so Ctrl-C in the
first epoch leaves a run with nothing to continue; ``--resume`` starts such a run over (the same seed gives the
uninterrupted result). A resumed run ends by testing the kept weights, so it must get the test data it was started
with: the run records them by name and digest (never by path), so they are checked, not found again.

A run that fails instead (a full disk, a diverged loss) before its first checkpoint leaves nothing behind
(``run_guard``): the same command runs again as it is once the cause is fixed. Past a checkpoint the run is whole
epoch by epoch, and ``--resume`` continues it.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from lstm_onnx.runtime.atomic import write_failure
from lstm_onnx.runtime.contract import CHAR_VOCAB_FILE, TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.errors import BundleError, WriteError
from lstm_onnx.runtime.json_text import dump_json, parse_json
from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules, load_rules
from lstm_onnx.trainer.checkpoint import CHECKPOINT_DIR, state_path
from lstm_onnx.trainer.plot import CURVES_FILE
from lstm_onnx.trainer.progress import TrainProgress
from lstm_onnx.trainer.run_dir import WEIGHTS_FILE
from lstm_onnx.trainer.run_format import CONFIG_FILE, METRICS_FILE, RunConfig

__all__ = [
    "check_settings_unedited",
    "check_test_data",
    "checkpoint_mismatch",
    "continues_run",
    "pinned_rules",
    "run_guard",
    "settings_record",
]

# Every file a run directory holds (trainer.run_dir), the checkpoint folder aside.
_RUN_FILES = (CONFIG_FILE, VOCAB_FILE, CHAR_VOCAB_FILE, TOKENIZER_RULES_FILE, WEIGHTS_FILE, METRICS_FILE, CURVES_FILE)

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
        BundleError: ``run_dir`` already holds a run and ``resume`` is off, or is a file.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise BundleError(f"--out {run_dir} is a file; give a directory for the run (it is created).")
    started = (run_dir / CONFIG_FILE).is_file()
    checkpointed = state_path(run_dir).exists()
    if resume and started and not checkpointed:
        # Nothing to continue (no epoch finished): the same seed makes starting over the uninterrupted run.
        progress.on_stage(f"{run_dir} has no finished epoch to resume; starting the run from epoch 1")
        return False
    if not resume and (started or checkpointed):
        raise BundleError(f"{run_dir} already holds a training run; pass --resume or choose another --out.")
    return resume


@contextmanager
def run_guard(run_dir: Path, fresh: bool) -> Iterator[None]:
    """Around a training run: a failure leaves either nothing or a run ``--resume`` continues, and a failed write is
    one ``WriteError`` line.

    Args:
        run_dir: The run directory.
        fresh: The run starts at epoch 1 (``continues_run`` returned ``False``).

    Raises:
        WriteError: The block raised an ``OSError`` (a full disk, a read-only file system, a parent that cannot hold
            files); says whether the run was removed or can be resumed.
    """
    existed = run_dir.exists()
    try:
        yield
    except Exception as err:  # re-raised below; Ctrl-C (not an Exception) keeps what --resume continues
        unstarted = fresh and not state_path(run_dir).exists()
        if unstarted:
            _remove_unstarted(run_dir, existed)
        if not isinstance(err, OSError):
            raise
        note = (
            "Nothing of the run was kept; run the command again."
            if unstarted
            else "The run keeps its last finished epoch; `--resume` continues it."
        )
        raise WriteError(f"{write_failure(err, run_dir)} {note}") from err


def _remove_unstarted(run_dir: Path, existed: bool) -> None:
    """Remove what a fresh run wrote before its first checkpoint (and the directory, when it made it)."""
    for name in _RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    if not existed:
        with contextlib.suppress(OSError):  # something else is in it now: not ours to delete
            run_dir.rmdir()


def settings_record(config: RunConfig, resumable: set[str]) -> dict[str, Any]:
    """What a checkpoint records of the run's ``config.json``: every setting resuming reads back from that file
    (model, tokenizer, labels, tag set) and the training settings a resumed run may not change.

    Args:
        config: The run's config as written.
        resumable: Training settings a resumed run may change (``epochs``, ``device``, ...), left out.
    """
    record: dict[str, Any] = {
        "model": dict(config.model),
        "tokenizer": config.tokenizer.to_dict(),
        "labels": list(config.labels),
        "train": {k: v for k, v in (config.train or {}).items() if k not in resumable},
    }
    if config.is_tagging:
        record["tagset"] = config.tagset
    return cast(dict[str, Any], parse_json(dump_json(record)))  # as config.json holds it: lists, not tuples


def check_settings_unedited(run_dir: Path, recorded: Any, saved: RunConfig, resumable: set[str]) -> None:
    """Refuse to resume a run whose ``config.json`` was edited since its last checkpoint.

    Resuming rebuilds the model, the tokenizer and the labels from ``config.json``: an edited shape made loading the
    checkpoint a traceback, and an edited label list, tokenizer or dropout went on silently with another model.

    Args:
        run_dir: The run being resumed.
        recorded: The checkpoint's ``settings_record`` (``None`` in checkpoints from before it was recorded).
        saved: ``config.json`` as read now.
        resumable: As ``settings_record``.

    Raises:
        BundleError: A setting differs; names each one with both values.
    """
    if not isinstance(recorded, dict):
        return
    now = settings_record(saved, resumable)
    changed = []
    for section in sorted(set(recorded) | set(now)):
        was, is_ = recorded.get(section), now.get(section)
        if isinstance(was, dict) and isinstance(is_, dict):
            changed += [
                f"{section}.{key}: {was.get(key)!r} → {is_.get(key)!r}"
                for key in sorted(set(was) | set(is_))
                if was.get(key) != is_.get(key)
            ]
        elif was != is_:
            changed.append(f"{section}: {was!r} → {is_!r}")
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise BundleError(
            f"Cannot resume {run_dir}: its {CONFIG_FILE} was edited since the last checkpoint ({shown}). Resuming "
            f"needs the settings the run was trained with: restore {CONFIG_FILE}, or start a new run in another --out."
        )


def checkpoint_mismatch(run_dir: Path, err: Exception) -> BundleError:
    """The error for a checkpoint that does not fit the model ``config.json`` describes (a checkpoint from before
    ``settings_record``, with an edited config)."""
    said = " ".join(str(err).split()) or type(err).__name__  # torch's first line says only "Error(s) in loading"
    said = said if len(said) <= 240 else said[:239] + "…"
    return BundleError(
        f"Cannot resume {run_dir}: its checkpoint does not fit its {CONFIG_FILE} ({said}); restore the "
        f"{CONFIG_FILE} it was trained with, or start a new run in another --out."
    )


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
