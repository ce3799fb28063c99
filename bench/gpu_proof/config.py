"""ProofConfig: what one run of the GPU proof kit does, with the full (GPU) and the tiny (CPU dry run) defaults."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["DEVICES", "Budgets", "ProofConfig", "cpu_count"]

DEVICES = ("cuda", "cpu")


def cpu_count() -> int:
    """CPUs this process may use (its affinity, where the platform tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Budgets:
    """Seconds each stage may take; ``total`` caps the sum (a stage gets at most what is left of it).

    The full kit must fit one device call (10 minutes) with room to spare, and a rerun must fit the session's 15
    minutes of device time too (with the machine's start and the calls that carry the files), so the total is 5.5
    minutes; joining the carried files and installing them come before it (about 20 s). Training gets the
    largest share: the ``gpu`` preset's epochs are stopped (Ctrl-C, as a user would) with 30% of its budget left,
    and the kept weights tested, so a slow epoch costs epochs, never the later stages. The speed stage includes
    ``torch.compile``'s compilation. The tagger runs only if its whole budget is left. ``scaled`` stretches them
    all (``--budget-scale``).
    """

    environment: float = 30.0
    train: float = 140.0
    export: float = 60.0
    verify: float = 40.0
    parity: float = 40.0
    speed: float = 90.0
    end_to_end: float = 30.0
    tagger: float = 80.0
    total: float = 330.0

    def to_dict(self) -> dict[str, float]:
        """Plain JSON-able form."""
        return asdict(self)

    def scaled(self, factor: float) -> Budgets:
        """Every budget times ``factor`` (a slower machine, or a session with more device time)."""
        if not factor > 0:
            raise ValueError(f"a budget scale must be > 0, got {factor}.")
        return Budgets(**{name: value * factor for name, value in asdict(self).items()})


# The CPU dry run: every stage, tiny, in well under a minute on a 2-core machine.
# Caps, not expectations: a quiet 2-core machine runs the stages in about 40 s, one with other jobs on both cores
# (load average 12) in up to 90 s. Training keeps 20 s back to test after a stop at its budget (training.py), and the
# tagger 30% of its budget for its export, so those two get room.
_TINY_BUDGETS = Budgets(
    environment=20.0,
    train=60.0,
    export=40.0,
    verify=30.0,
    parity=20.0,
    speed=30.0,
    end_to_end=20.0,
    tagger=70.0,
    total=240.0,
)


@dataclass(frozen=True)
class ProofConfig:
    """One run of the kit.

    Attributes:
        device: ``"cuda"`` (the proof) or ``"cpu"`` (the dry run: every stage on the CPU provider).
        tiny: Tiny preset, tiny samples, short budgets (the dry run); else the ``gpu`` preset at full size.
        data: Labelled IMDB reviews (``aclImdb`` folder, ``.tar`` or ``.tar.gz``): training, parity, timing.
        embeddings: Word vectors for training (``None``: trained from scratch).
        tokenizer_rules: ``tokenizer.json`` pinned by training, so no spaCy is needed (``None``: spaCy's).
        tag_data: Folder of ``*-train/-dev/-test`` CoNLL-U files for the tagging stage (``None``: skipped).
        work_dir: Runs and bundles go here (replaced on every run).
        results_dir: Where the results (JSON and a Markdown summary) are written.
        copy_to: A second folder the results are copied to (the device tool's ``$OUT``).
        preset: Training preset of the classifier (and of the tagger).
        epochs: Epoch cap for the classifier (``None``: the preset's).
        tag_epochs: Epoch cap for the tagger (``None``: the preset's).
        workers: Processes tokenizing texts (training, parity, timing, end to end).
        batch_sizes: Batch sizes of real reviews timed.
        runs: Timed repetitions per figure.
        export_limit: Test reviews the export and ``verify`` check parity on.
        parity_texts: Test reviews of the kit's own parity stage.
        speed_texts: Test reviews the timing batches are cut from.
        e2e_texts: Reviews scored end to end.
        e2e_batch_size: Most reviews per session call end to end.
        e2e_max_batch_tokens: Most padded tokens per session call end to end.
        compile_backend: ``torch.compile`` backend of the compiled PyTorch peer.
        budgets: Seconds per stage.
        seed: Sampling seed.
        command: The command line that started the run (recorded with the results).
    """

    device: str
    tiny: bool
    data: Path
    embeddings: Path | None = None
    tokenizer_rules: Path | None = None
    tag_data: Path | None = None
    work_dir: Path = Path(".device/work")
    results_dir: Path = Path("benchmarks/results")
    copy_to: Path | None = None
    preset: str = "gpu"
    epochs: int | None = None
    tag_epochs: int | None = None
    workers: int = field(default_factory=cpu_count)
    batch_sizes: tuple[int, ...] = (1, 32, 256)
    runs: int = 30
    export_limit: int = 500
    parity_texts: int = 2000
    speed_texts: int = 4096
    e2e_texts: int = 10_000
    e2e_batch_size: int = 256
    e2e_max_batch_tokens: int = 65_536
    compile_backend: str = "inductor"
    budgets: Budgets = Budgets()
    seed: int = 0
    command: str = ""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}.")
        counts = ("workers", "runs", "export_limit", "parity_texts", "speed_texts", "e2e_texts", "e2e_batch_size")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError(f"batch sizes must be >= 1, got {self.batch_sizes}.")

    @classmethod
    def make(cls, device: str, tiny: bool, data: Path, **given: Any) -> ProofConfig:
        """The config for ``device`` at full size or tiny, with ``given`` fields (``None`` values ignored) on top.

        Tiny: the ``tiny`` preset for 3 epochs, batch sizes 1/8/32 timed 10 times, small samples, runtime-sized
        end-to-end batches, and ``torch.compile``'s ``eager`` backend (graph capture without code generation,
        which alone takes most of a minute on a small CPU).
        """
        settings: dict[str, Any] = {}
        if tiny:
            settings = {
                "preset": "tiny",
                "epochs": 3,
                "tag_epochs": 3,
                "batch_sizes": (1, 8, 32),
                "runs": 10,
                "export_limit": 60,
                "parity_texts": 60,
                "speed_texts": 120,
                "e2e_texts": 200,
                "e2e_batch_size": 32,
                "e2e_max_batch_tokens": 2_048,
                "compile_backend": "eager",
                "budgets": _TINY_BUDGETS,
            }
        elif device == "cpu":
            settings = {"e2e_batch_size": 32, "e2e_max_batch_tokens": 2_048}
        settings.update({k: v for k, v in given.items() if v is not None})
        return cls(device=device, tiny=tiny, data=Path(data), **settings)

    def with_command(self, command: str) -> ProofConfig:
        """The same config, recording the command line that started it."""
        return replace(self, command=command)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (paths as given, which are relative to the checkout when run from it)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = value.as_posix()
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data
