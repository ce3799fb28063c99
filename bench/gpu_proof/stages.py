"""Stages with time budgets, and commands run as subprocesses that are stopped (Ctrl-C first) at their budget.

A stage measures and returns a record; it never decides the run's fate alone: a failed stage is recorded with its
error and the stages that do not need it still run, because a GPU machine is lent for minutes and every figure it
can give is worth keeping. The run passes when every stage that ran passed.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CommandResult", "Deadline", "Proof", "StageRecord", "python_env", "run_command", "shown"]

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
# How long a command stopped at its budget may take to finish after Ctrl-C (training saves its checkpoint).
INTERRUPT_GRACE_S = 20.0
# Lines of a command's output kept in its record.
TAIL_LINES = 30


@dataclass(frozen=True)
class Deadline:
    """The end of a stage's budget on a monotonic clock."""

    end: float
    clock: Callable[[], float] = time.monotonic

    def left(self) -> float:
        """Seconds left (negative once past)."""
        return self.end - self.clock()

    def expired(self) -> bool:
        """True once the budget is spent."""
        return self.left() <= 0


@dataclass
class StageRecord:
    """What one stage did.

    Attributes:
        stage: Its name.
        status: ``passed``, ``failed`` or ``skipped``.
        seconds: Wall time it took.
        budget_s: Seconds it was given.
        reason: Why it failed or was skipped.
        result: Its measurements.
    """

    stage: str
    status: str
    seconds: float = 0.0
    budget_s: float = 0.0
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def over_budget(self) -> bool:
        """It took longer than its budget (a stage checks its deadline between units of work)."""
        return self.seconds > self.budget_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {**asdict(self), "over_budget": self.over_budget}


class Proof:
    """Runs stages in order within a total budget and keeps their records.

    Args:
        total_s: Seconds for every stage together.
        clock: Monotonic clock in seconds.
    """

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.total_s = total_s
        self.records: list[StageRecord] = []

    def left(self) -> float:
        """Seconds left of the total."""
        return self.total_s - (self.clock() - self.started)

    def status(self, stage: str) -> str | None:
        """The status of a stage that ran (``None``: not run)."""
        return next((r.status for r in self.records if r.stage == stage), None)

    def run(
        self,
        stage: str,
        budget_s: float,
        work: Callable[[Deadline], dict[str, Any]],
        needs: Sequence[str] = (),
        optional: bool = False,
    ) -> StageRecord:
        """Run ``work`` with a deadline, or record why it was skipped.

        Args:
            stage: Its name.
            budget_s: Its own budget; it gets at most what is left of the total.
            work: Takes the deadline, returns measurements; ``{"passed": False, "reason": ...}`` marks a failure
                it measured (e.g. parity out of tolerance).
            needs: Stages that must have passed first.
            optional: Run only when its whole budget is left ("if time allows"); else it gets what is left.

        Returns:
            The stage's record (also kept in ``records``).
        """
        reason = self.skip_reason(budget_s, needs, optional)
        if reason is not None:
            record = StageRecord(stage, SKIPPED, budget_s=budget_s, reason=reason)
        else:
            record = self._run(stage, min(budget_s, self.left()), work)
        self.records.append(record)
        return record

    def skip_reason(self, budget_s: float, needs: Sequence[str] = (), optional: bool = False) -> str | None:
        """Why a stage with this budget and these needs would be skipped now (``None``: it would run)."""
        missing = [n for n in needs if self.status(n) != PASSED]
        left = self.left()
        if missing:
            return f"needs {', '.join(missing)}"
        if optional and left < budget_s:
            return f"not enough time left ({left:.0f} s of the {budget_s:.0f} s it needs)"
        if left <= 0:
            return "the total budget is spent"
        return None

    def _run(self, stage: str, budget: float, work: Callable[[Deadline], dict[str, Any]]) -> StageRecord:
        started = self.clock()
        try:
            result = work(Deadline(started + budget, self.clock))
        except Exception as err:  # recorded with its traceback and failing the run, never hidden
            tail = traceback.format_exc().strip().splitlines()[-TAIL_LINES:]
            return StageRecord(
                stage,
                FAILED,
                self.clock() - started,
                budget,
                f"{type(err).__name__}: {err}",
                {"traceback": tail},
            )
        passed = bool(result.pop("passed", True))
        reason = str(result.pop("reason", ""))
        return StageRecord(stage, PASSED if passed else FAILED, self.clock() - started, budget, reason, result)

    @property
    def passed(self) -> bool:
        """No stage failed (skipped stages say why in their records)."""
        return all(r.status != FAILED for r in self.records)


@dataclass(frozen=True)
class CommandResult:
    """One command run to completion or stopped at its budget.

    Attributes:
        command: The command line, shell-quoted.
        returncode: Its exit status (130 after Ctrl-C, negative when killed by a signal).
        seconds: Wall time.
        interrupted: It was stopped at its budget.
        output_tail: The last lines of its stdout and stderr together.
    """

    command: str
    returncode: int
    seconds: float
    interrupted: bool
    output_tail: list[str]

    @property
    def ok(self) -> bool:
        """It ran to completion with exit status 0."""
        return self.returncode == 0 and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


def shown(argv: Sequence[str | Path]) -> str:
    """A command line as a shell would take it."""
    return shlex.join(str(a) for a in argv)


def run_command(
    argv: Sequence[str | Path], timeout_s: float, env: Mapping[str, str] | None = None, log: Path | None = None
) -> CommandResult:
    """Run a command; at ``timeout_s`` send it Ctrl-C (SIGINT), and kill it if it has not ended soon after.

    Args:
        argv: The command.
        timeout_s: Seconds it may run.
        env: Its environment (default: this process's).
        log: File that receives its whole output (appended), besides the tail kept in the result.

    Returns:
        How it ended, with the tail of its output.
    """
    started = time.monotonic()
    command = shown(argv)
    out = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed below
    try:
        if out is not None:
            out.write(f"$ {command}\n".encode())
            out.flush()
        lines: list[str] = []
        with subprocess.Popen(
            [str(a) for a in argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
        ) as process:
            interrupted = _drain(process, max(timeout_s, 0.1), lines, out)
    finally:
        if out is not None:
            out.close()
    return CommandResult(command, int(process.returncode), time.monotonic() - started, interrupted, lines[-TAIL_LINES:])


def _drain(process: subprocess.Popen[bytes], timeout_s: float, lines: list[str], out: Any) -> bool:
    """Collect the output until the process ends; stop it at ``timeout_s``. Returns whether it was stopped."""
    import threading

    stream = process.stdout
    if stream is None:  # pragma: no cover - Popen was given stdout=PIPE
        raise ValueError("run_command needs the command's stdout piped")

    def read() -> None:
        for raw in iter(stream.readline, b""):
            if out is not None:
                out.write(raw)
                out.flush()
            lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
            del lines[: -TAIL_LINES * 4]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    interrupted = False
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        interrupted = True
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    return interrupted


def python_env(drop: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """This process's environment without ``drop`` and with ``extra`` set."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env
