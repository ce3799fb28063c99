"""Per-epoch resume state: written atomically, read back with ``torch.load(weights_only=True)``.

The state holds tensors, numbers, strings, lists and dicts only (model, optimizer, scheduler and scaler
state dicts, RNG states, epoch, history); loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.trainer.run_dir import atomic_write_bytes

__all__ = ["CHECKPOINT_DIR", "STATE_FILE", "load_state", "save_state", "state_path"]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


def state_path(run_dir: Path) -> Path:
    """Where a run directory keeps its resume state."""
    return Path(run_dir) / CHECKPOINT_DIR / STATE_FILE


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Write the resume state atomically: an interruption leaves the previous state intact."""
    path = state_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(run_dir: Path) -> dict[str, Any]:
    """Read the resume state (CPU tensors).

    Raises:
        BundleError: The file is missing, corrupt, or holds anything but weights and plain data.
    """
    path = state_path(run_dir)
    if not path.is_file():
        raise BundleError(f"No checkpoint at {path}: nothing to resume. Train without --resume to start the run.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BundleError(
            f"{path} holds more than weights and plain data ({first}); refusing to load it. "
            "Delete the checkpoint folder and train without --resume."
        ) from err
    except (RuntimeError, OSError, EOFError) as err:
        raise BundleError(f"{path} is corrupt or unreadable ({err}); train without --resume.") from err
    if not isinstance(state, dict) or "epoch" not in state:
        raise BundleError(f"{path} is not a training checkpoint; train without --resume.")
    return state
