"""The only place an ONNX Runtime ``InferenceSession`` is built: provider choice, threads, optimisation level.

Providers:

- ``cpu``: the CPU execution provider.
- ``cuda``: the CUDA execution provider, or a ``ProviderError`` when it cannot really run here. ONNX Runtime
  silently falls back to the CPU when CUDA cannot start; this module never does.
- ``auto``: CUDA when it is genuinely usable, else the CPU; ``ModelSession.provider`` and
  ``ModelSession.provider_note`` say which was chosen and why.

"Usable" is proven, not assumed: the CUDA libraries are preloaded (``onnxruntime.preload_dlls``), then a tiny
LSTM graph is run with CPU fallback disabled, so the LSTM kernel (cuDNN) must really run on the GPU.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.contract import INPUT_IDS, LENGTHS, LOGITS
from lstm_onnx.runtime.errors import ORT_MISSING, MissingDependencyError, ProviderError

try:
    import onnxruntime as ort
except ModuleNotFoundError as err:  # the base install leaves the ONNX Runtime build to the [cpu]/[gpu] extras
    raise MissingDependencyError(ORT_MISSING) from err

__all__ = [
    "BATCH_MIN_ROWS",
    "BATCH_THREADS",
    "CPU",
    "CUDA",
    "PROVIDER_CHOICES",
    "ModelSession",
    "SessionConfig",
    "create_session",
    "probe_cuda",
    "runtime_session_config",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_CHOICES = ("auto", "cpu", "cuda")
# The runtime's default threading, measured on this project's 2-core machine with the second core idle
# (benchmarks/README.md, "One thread or two"): a second intra-op thread runs batches of 8-32 real reviews
# 1.7-1.9x faster on the 2x256 model (fp32 and int8) and batches of 32 1.4-1.5x faster on the cpu preset, but
# slows single texts by 3-94% (thread hand-off costs more than it splits). So calls of at least BATCH_MIN_ROWS
# rows run on BATCH_THREADS threads, smaller calls on one.
BATCH_THREADS = 2
BATCH_MIN_ROWS = 8
_OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
# Present on Linux only when the NVIDIA kernel driver is loaded; without it CUDA cannot run, and probing would
# only print ONNX Runtime's library-loading errors.
_NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
# A one-node ONNX graph (opset 17, IR 8): LSTM, hidden 2, X float (T=3, B=1, I=2), sequence_lens int32 (1),
# constant W and R. Made with onnx.helper (tests/runtime/test_session.py rebuilds it) and kept inline because
# the runtime does not depend on the onnx package.
_LSTM_PROBE = base64.b64decode(
    "CAgSCWxzdG0tb25ueDqiAgotCgFYCgFXCgFSCgAKA3NlcRIBWSIETFNUTSoSCgtoaWRkZW5fc2l6ZRgCoAECEgpsc3RtX3Byb2JlKk0IAQgICAIQ"
    "AUIBV0pAzczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPSpNCAEICAgCEAFCAVJK"
    "QM3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD3NzMw9zczMPc3MzD1aFwoBWBISChAIARIMCgIIAwoC"
    "CAEKAggCWhEKA3NlcRIKCggIBhIECgIIAWIbCgFZEhYKFAgBEhAKAggDCgIIAQoCCAEKAggCQgQKABAR"
)


@dataclass(frozen=True)
class SessionConfig:
    """How to build a session; every setting explicit, none left to moving upstream defaults.

    Attributes:
        providers: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        intra_op_threads: Threads inside one operator (for every call when ``batch_threads`` is ``None``).
            ``runtime_session_config`` gives the runtime's default: 1 here, ``BATCH_THREADS`` for batches.
        batch_threads: Intra-op threads for calls of at least ``batch_min_rows`` rows, on the CPU provider, in a
            second session built on first use (``None``: always ``intra_op_threads``, one session). Capped at the
            machine's CPU count; at or below ``intra_op_threads`` it changes nothing.
        batch_min_rows: The batch size from which ``batch_threads`` applies.
        inter_op_threads: Threads across operators (the graph is sequential: 1).
        graph_optimization: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``.
        allow_spinning: Let idle ORT threads spin (lower latency, burns CPU between calls).
        device_id: CUDA device ordinal.
        log_severity: ONNX Runtime log level for the session (0 verbose … 4 fatal).
    """

    providers: str = "auto"
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    batch_threads: int | None = None
    batch_min_rows: int = BATCH_MIN_ROWS
    graph_optimization: str = "all"
    allow_spinning: bool = False
    device_id: int = 0
    log_severity: int = 3

    def __post_init__(self) -> None:
        if self.providers not in PROVIDER_CHOICES:
            raise ValueError(f"Unknown provider {self.providers!r}; expected one of {list(PROVIDER_CHOICES)}.")
        if self.graph_optimization not in _OPTIMIZATION_LEVELS:
            raise ValueError(
                f"Unknown graph_optimization {self.graph_optimization!r}; expected one of {list(_OPTIMIZATION_LEVELS)}."
            )
        for name in ("intra_op_threads", "inter_op_threads", "batch_threads", "batch_min_rows"):
            value = getattr(self, name)
            if value is None and name == "batch_threads":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        if self.device_id < 0 or not 0 <= self.log_severity <= 4:
            raise ValueError(
                f"device_id must be >= 0 and log_severity in 0..4, got {self.device_id}, {self.log_severity}."
            )

    def wide_threads(self) -> int | None:
        """Threads of the batch session, or ``None`` when these settings need none (one session does it all)."""
        if self.batch_threads is None:
            return None
        threads = min(self.batch_threads, os.cpu_count() or 1)
        return threads if threads > self.intra_op_threads else None

    def session_options(self, intra_op_threads: int | None = None) -> ort.SessionOptions:
        """The ``onnxruntime.SessionOptions`` these settings describe (``intra_op_threads`` overrides the field)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = _OPTIMIZATION_LEVELS[self.graph_optimization]
        options.log_severity_level = self.log_severity
        spin = "1" if self.allow_spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return options


class ModelSession:
    """An ``InferenceSession`` and the way to run it (IO binding on CUDA). Safe to share between threads.

    Attributes:
        session: The ONNX Runtime session.
        provider: The execution provider running the graph (``CPUExecutionProvider`` or ``CUDAExecutionProvider``).
        provider_note: Why that provider was chosen (for ``auto``: why CUDA was or was not used).
        config: The settings it was built with.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        provider: str,
        provider_note: str,
        config: SessionConfig,
        source: str | bytes | None = None,
    ) -> None:
        self.session = session
        self.provider = provider
        self.provider_note = provider_note
        self.config = config
        # The batch session (config.batch_threads), built on the first call large enough for it from the model's
        # bytes as read now: never from the path again, which may have changed since the bundle's checks.
        if provider == CPU and config.wide_threads() is not None and source is not None:
            self._source: bytes | None = Path(source).read_bytes() if isinstance(source, str) else source
        else:
            self._source = None
        self._wide: ort.InferenceSession | None = None
        self._wide_lock = threading.Lock()

    def _session_for(self, rows: int) -> ort.InferenceSession:
        """The session for a call of ``rows`` rows: the batch session from ``batch_min_rows`` rows, if any."""
        if self._source is None or rows < self.config.batch_min_rows:
            return self.session
        with self._wide_lock:
            if self._wide is None:
                options = self.config.session_options(self.config.wide_threads())
                self._wide = _build(self._source, options, [CPU])
        return self._wide

    def run(self, ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.floating[Any]]:
        """Run the graph on one padded batch.

        Args:
            ids: ``input_ids`` int64 (B, T), right-padded.
            lengths: ``lengths`` int64 (B), each in [1, T].

        Returns:
            ``logits`` (B, C) in the graph's float dtype.
        """
        feeds = {INPUT_IDS: ids, LENGTHS: lengths}
        if self.provider == CUDA:
            # IO binding: inputs are copied to the device once and logits come back in one copy, instead of ORT
            # staging every feed and fetch itself. A binding per call keeps concurrent calls independent.
            binding = self.session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output(LOGITS, "cpu")
            self.session.run_with_iobinding(binding)
            logits: NDArray[np.floating[Any]] = binding.copy_outputs_to_cpu()[0]
            return logits
        return self._session_for(len(ids)).run([LOGITS], feeds)[0]  # type: ignore[no-any-return]

    def run_all(self, feeds: dict[str, NDArray[Any]]) -> list[NDArray[Any]]:
        """Run any graph on named inputs and return every output, in the graph's order (IO binding on CUDA).

        Args:
            feeds: Input name -> array; names the graph does not take are left out (an exporter may drop an
                input the computation never reads).

        Returns:
            The outputs as numpy arrays.
        """
        taken = {i.name: feeds[i.name] for i in self.session.get_inputs() if i.name in feeds}
        if self.provider == CUDA:
            binding = self.session.io_binding()
            for name, value in taken.items():
                binding.bind_cpu_input(name, value)
            for output in self.session.get_outputs():
                binding.bind_output(output.name, "cpu")
            self.session.run_with_iobinding(binding)
            return list(binding.copy_outputs_to_cpu())
        rows = len(taken[INPUT_IDS]) if INPUT_IDS in taken else 0
        return [np.asarray(o) for o in self._session_for(rows).run(None, taken)]


def _available() -> list[str]:
    return list(ort.get_available_providers())


def probe_cuda(config: SessionConfig) -> tuple[bool, str]:
    """Check that ONNX Runtime's CUDA provider really runs an LSTM here.

    Args:
        config: Gives the device id and log level.

    Returns:
        ``(usable, reason)``; the reason explains a failure in one line, or names the device on success.
    """
    if CUDA not in _available():
        return False, f"this onnxruntime build has no {CUDA} (install onnxruntime-gpu)"
    if sys.platform.startswith("linux") and not _NVIDIA_DRIVER.exists():
        return False, f"no NVIDIA GPU driver found ({_NVIDIA_DRIVER} is missing)"
    # preload_dlls prints missing libraries on stdout, which carries results in the CLI: keep its words for the reason.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        ort.preload_dlls()
    options = config.session_options()
    # With CPU fallback disabled, session creation fails unless the LSTM node is placed on CUDA (cuDNN).
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        probe = ort.InferenceSession(_LSTM_PROBE, options, providers=[(CUDA, {"device_id": config.device_id})])
        if probe.get_providers()[0] != CUDA:
            return False, f"{CUDA} could not start; {_first_line(printed.getvalue())}"
        x = np.ones((3, 1, 2), np.float32)
        y = probe.run(None, {"X": x, "seq": np.array([3], np.int32)})[0]
    except Exception as err:  # ORT raises its own Fail/RuntimeException types; all mean "not usable"
        detail = _first_line(printed.getvalue())
        return False, f"{CUDA} failed to run an LSTM: {_first_line(str(err))}" + (f" ({detail})" if detail else "")
    if not np.isfinite(y).all():
        return False, f"{CUDA} ran the LSTM probe but returned non-finite values"
    return True, f"{CUDA} on device {config.device_id} ran the LSTM probe"


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def create_session(model: Path | bytes, config: SessionConfig) -> ModelSession:
    """Build the session for ``model`` on the provider ``config`` asks for.

    Args:
        model: Path of an ``.onnx`` file, or its bytes.
        config: Providers, threads, optimisation level.

    Returns:
        The session, with the chosen provider and why.

    Raises:
        ProviderError: ``cuda`` was asked for and cannot really run here (never a silent CPU fallback).
    """
    source = str(model) if isinstance(model, Path) else model
    options = config.session_options()
    if config.providers == "cpu":
        return ModelSession(_build(source, options, [CPU]), CPU, "cpu requested", config, source)
    usable, reason = probe_cuda(config)
    if not usable:
        if config.providers == "cuda":
            # Only the CPU provider is proven usable here (TensorRT, also listed by onnxruntime-gpu, needs CUDA too).
            raise ProviderError(
                f"Provider '{CUDA}' is not available; available: {CPU} ({reason}). "
                "Use --provider cpu, or install onnxruntime-gpu with CUDA 13 and cuDNN 9 on a machine with a GPU."
            )
        return ModelSession(_build(source, options, [CPU]), CPU, f"auto: CPU, because {reason}", config, source)
    # The CPU provider stays listed for the few shape ops CUDA does not implement; the check below makes sure
    # CUDA itself was registered (ORT drops a provider that fails to start and carries on without it).
    session = _build(source, options, [(CUDA, {"device_id": config.device_id}), CPU])
    if session.get_providers()[0] != CUDA:
        raise ProviderError(f"Provider '{CUDA}' passed the probe but did not start for this model; use --provider cpu.")
    note = "cuda requested" if config.providers == "cuda" else f"auto: CUDA, because {reason}"
    return ModelSession(session, CUDA, note, config)


def _build(source: str | bytes, options: ort.SessionOptions, providers: list[Any]) -> ort.InferenceSession:
    return ort.InferenceSession(source, sess_options=options, providers=providers)


def runtime_session_config(providers: str, threads: int | None) -> SessionConfig:
    """The session settings behind ``lstm_onnx.load(..., threads=...)`` and the models' ``load``.

    Args:
        providers: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: Intra-op threads for every call; ``None`` for the runtime's default: one thread for calls of fewer
            than ``BATCH_MIN_ROWS`` rows, ``BATCH_THREADS`` (at most the CPU count) for larger ones.

    Returns:
        The ``SessionConfig``.
    """
    if threads is None:
        return SessionConfig(providers=providers, intra_op_threads=1, batch_threads=BATCH_THREADS)
    return SessionConfig(providers=providers, intra_op_threads=threads)
