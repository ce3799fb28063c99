"""What ``train --resume`` may continue, shared by the classifier's and the tagger's training loops.

A run directory gets its ``config.json`` before the first epoch and its checkpoint after each one, so Ctrl-C in the
first epoch leaves a run with nothing to continue; ``--resume`` starts such a run over (the same seed gives the
uninterrupted result).
"""

from __future__ import annotations

from pathlib import Path

from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.checkpoint import state_path
from lstm_onnx.trainer.progress import TrainProgress
from lstm_onnx.trainer.run_format import CONFIG_FILE

__all__ = ["continues_run"]


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
