"""The only place an ONNX Runtime ``InferenceSession`` is built: provider choice, threads, optimisation level.

Providers:

- ``cpu``: the CPU execution provider.
- ``cuda``: the CUDA execution provider, or a ``ProviderError`` when it cannot really run here. ONNX Runtime
  silently falls back to the CPU when CUDA cannot start; this module never does.
- ``auto``: CUDA when it is genuinely usable, else the CPU; ``ModelSession.provider`` and
  ``ModelSession.provider_note`` say which was chosen and why.

"Usable" is proven, not assumed: the CUDA libraries are preloaded (``onnxruntime.preload_dlls``), then a tiny
LSTM graph is run with CPU fallback disabled, so the LSTM kernel (cuDNN) must really run on the GPU.

TF32: ONNX Runtime's CUDA provider computes float32 MatMul/Gemm in TF32 by default (``use_tf32``: about 10 bits of
mantissa on Ampere and later), which an fp32 bundle's parity (``exporter.tolerances.CUDA``) does not allow; sessions
here turn it off unless ``SessionConfig.cuda_tf32`` asks for it. Its cuDNN LSTM runs in cuDNN's default math mode,
which follows the process environment instead: start the process with ``NVIDIA_TF32_OVERRIDE=0`` for strict fp32
there too (``scripts/gpu_proof.sh`` does).
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
from lstm_onnx.runtime.errors import ORT_MISSING, BundleError, ConfigError, MissingDependencyError, ProviderError
from lstm_onnx.runtime.limits import MAX_THREADS, check_range

try:
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state
except ModuleNotFoundError as err:  # the base install leaves the ONNX Runtime build to the [cpu]/[gpu] extras
    raise MissingDependencyError(ORT_MISSING) from err

__all__ = [
    "BATCH_MIN_ROWS",
    "BATCH_MIN_TOKENS",
    "BATCH_THREADS",
    "CPU",
    "CUDA",
    "PROVIDER_CHOICES",
    "ModelSession",
    "SessionConfig",
    "ORT_ERRORS",
    "create_session",
    "probe_cuda",
    "runtime_session_config",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_CHOICES = ("auto", "cpu", "cuda")
# The runtime's default threading, measured on this project's 2-core machine with the second core idle
# (benchmarks/README.md, "One thread or two"). One call on a 2-thread session hands work between the threads at
# every time step: it slows single texts by 3-94% and short batches too. Cutting a call into parts of consecutive
# rows that run concurrently on the one session, one thread each, has no hand-off: from 512 padded tokens (2 x 512
# to 32 x 16), parts take 0.50-0.84x the time of one 1-thread call (one case even: int8 4 x 128, 1.03x) and
# 0.67-1.00x that of one call on a 2-thread session (fp32 and int8, 2x256 model; benchmarks/shape_levers.py). Below
# that a part's work is too small to pay for the second thread (2 x 64 and 4 x 16: 1.02-1.31x), and a single text
# cannot be cut. So calls of at least BATCH_MIN_ROWS rows and BATCH_MIN_TOKENS padded tokens are cut into
# BATCH_THREADS parts; the predictor's 2,048-token cap makes most batches of long reviews 2-7 rows, which this
# splits (end to end 1.24-1.58x threads=1, against 1.04-1.21x for the former 2-thread session from 8 rows).
BATCH_THREADS = 2
BATCH_MIN_ROWS = 2
BATCH_MIN_TOKENS = 512
_OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
# Present on Linux only when the NVIDIA kernel driver is loaded; without it CUDA cannot run, and probing would
# only print ONNX Runtime's library-loading errors. The /proc file is the usual sign; a sandboxed machine (e.g.
# gVisor's GPU proxy) may offer only the device node, which the driver's user-space libraries open.
_NVIDIA_DRIVER = (Path("/proc/driver/nvidia/version"), Path("/dev/nvidiactl"))
# The exceptions ONNX Runtime raises for its own load and run failures (Fail, InvalidProtobuf, InvalidArgument,
# NotImplemented, RuntimeException, ...): each one is a ``BundleError`` line here, never a traceback. A model that
# loads and passed the bundle's checks still meets them on a graph made to fail (an out-of-bounds Gather, a
# dimension ORT cannot allocate).
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    value for value in vars(_ort_state).values() if isinstance(value, type) and issubclass(value, Exception)
)
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
        intra_op_threads: Threads inside one operator, for every call. ``runtime_session_config`` gives the
            runtime's default: 1 here, and ``BATCH_THREADS`` for batches.
        batch_threads: Threads for a batch: calls of at least ``batch_min_rows`` rows and ``batch_min_tokens``
            padded tokens on the CPU provider are cut into ``batch_threads // intra_op_threads`` parts of
            consecutive rows, run concurrently on the session (``None``: every call runs whole). Capped at the
            machine's CPU count; below twice ``intra_op_threads`` it changes nothing. Applies to graphs whose inputs
            and outputs are all batch-major (``ModelSession.run``, ``ModelSession.run_batch``: the bundles'
            contracts), never to ``run_all``.
        batch_min_rows: The batch size from which ``batch_threads`` applies.
        batch_min_tokens: The padded tokens (rows x padded length) from which ``batch_threads`` applies.
        inter_op_threads: Threads across operators (the graph is sequential: 1).
        graph_optimization: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"``.
        allow_spinning: Let idle ORT threads spin (lower latency, burns CPU between calls).
        device_id: CUDA device ordinal.
        cuda_tf32: Let the CUDA provider run float32 MatMul/Gemm in TF32 (faster, about 1e-3 relative error);
            off keeps fp32 maths and the parity verified for fp32 bundles.
        log_severity: ONNX Runtime log level for the session (0 verbose … 4 fatal).
    """

    providers: str = "auto"
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    batch_threads: int | None = None
    batch_min_rows: int = BATCH_MIN_ROWS
    batch_min_tokens: int = BATCH_MIN_TOKENS
    graph_optimization: str = "all"
    allow_spinning: bool = False
    device_id: int = 0
    cuda_tf32: bool = False
    log_severity: int = 3

    def __post_init__(self) -> None:
        if self.providers not in PROVIDER_CHOICES:
            raise ValueError(f"Unknown provider {self.providers!r}; expected one of {list(PROVIDER_CHOICES)}.")
        if self.graph_optimization not in _OPTIMIZATION_LEVELS:
            raise ValueError(
                f"Unknown graph_optimization {self.graph_optimization!r}; expected one of {list(_OPTIMIZATION_LEVELS)}."
            )
        for name in ("intra_op_threads", "inter_op_threads", "batch_threads"):
            # ORT builds every thread it is asked for: threads=10**6 grew to 22.7 GB before it was killed.
            check_range(name, getattr(self, name), 1, MAX_THREADS, optional=name == "batch_threads")
        for name in ("batch_min_rows", "batch_min_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}.")
        if self.device_id < 0 or not 0 <= self.log_severity <= 4:
            raise ValueError(
                f"device_id must be >= 0 and log_severity in 0..4, got {self.device_id}, {self.log_severity}."
            )

    def row_parts(self) -> int:
        """Into how many concurrent parts a large enough batch is cut (1: every call runs whole)."""
        if self.batch_threads is None:
            return 1
        return max(1, min(self.batch_threads, os.cpu_count() or 1) // self.intra_op_threads)

    def cuda_options(self) -> dict[str, Any]:
        """The CUDA execution provider's options: the device, and TF32 off unless ``cuda_tf32``."""
        return {"device_id": self.device_id, "use_tf32": "1" if self.cuda_tf32 else "0"}

    def session_options(self) -> ort.SessionOptions:
        """The ``onnxruntime.SessionOptions`` these settings describe."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
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
        source: What the graph was loaded from (its path), for messages.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        provider: str,
        provider_note: str,
        config: SessionConfig,
        source: str = "the model",
    ) -> None:
        self.session = session
        self.provider = provider
        self.provider_note = provider_note
        self.config = config
        self.source = source
        self._parts = config.row_parts() if provider == CPU else 1

    def _run(self, outputs: list[str] | None, feeds: dict[str, NDArray[Any]]) -> list[NDArray[Any]]:
        """One ``InferenceSession.run``; ONNX Runtime's own failures become one ``BundleError`` line."""
        try:
            return [np.asarray(o) for o in self.session.run(outputs, feeds)]
        except ORT_ERRORS as err:
            shapes = ", ".join(f"{name} {tuple(value.shape)}" for name, value in feeds.items())
            raise BundleError(
                f"ONNX Runtime failed to run {self.source} on {shapes}: {_one_line(err)}. The graph does not compute "
                "what its bundle promises (a corrupt or altered model.onnx); run `lstm-onnx export` again."
            ) from err

    def run_batch(self, feeds: dict[str, NDArray[Any]], outputs: list[str]) -> list[NDArray[Any]]:
        """Run a graph whose every input and output is batch-major (dimension 0 is the batch), as the bundles' are.

        On the CPU, a call of at least ``config.batch_min_rows`` rows and ``config.batch_min_tokens`` padded tokens
        (rows x the padded length of the first input with one) is cut into ``config.row_parts()`` parts of
        consecutive rows that run concurrently on this session (ORT releases the GIL while it computes); each
        output is the parts' outputs joined along dimension 0. Rows never interact in these graphs (every text has
        its own ``lengths`` entry), so fp32 outputs are those of one call, bit for bit; int8 quantizes activations
        per call, so its outputs move within the int8 tolerance, as with any other cut of the batch.

        Args:
            feeds: Input name -> array with the batch on dimension 0.
            outputs: Names of the outputs to return.

        Returns:
            The outputs, in the order asked for.
        """
        if self.provider == CUDA:
            return self._run_bound(feeds, outputs)
        sizes = {len(v) for v in feeds.values()}
        rows = sizes.pop() if len(sizes) == 1 else 0  # inputs that disagree on the batch: ORT says so, whole
        tokens = next((v.shape[0] * v.shape[1] for v in feeds.values() if v.ndim >= 2), rows)
        large = rows >= self.config.batch_min_rows and tokens >= self.config.batch_min_tokens
        parts = min(self._parts, rows) if large else 1
        if parts == 1:
            return self._run(outputs, feeds)
        bounds = np.linspace(0, rows, parts + 1).round().astype(int)
        pieces = [{k: v[a:b] for k, v in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        results: list[list[NDArray[Any]]] = [[] for _ in pieces]
        errors: list[BaseException | None] = [None] * len(pieces)

        def work(index: int) -> None:
            try:
                results[index] = self._run(outputs, pieces[index])
            except BaseException as error:  # re-raised on the calling thread below
                errors[index] = error

        helpers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(1, len(pieces))]
        for helper in helpers:
            helper.start()
        work(0)
        for helper in helpers:
            helper.join()
        for error in errors:
            if error is not None:
                raise error
        return [np.concatenate([part[i] for part in results]) for i in range(len(outputs))]

    def run(self, ids: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.floating[Any]]:
        """Run the graph on one padded batch.

        Args:
            ids: ``input_ids`` int64 (B, T), right-padded.
            lengths: ``lengths`` int64 (B), each in [1, T].

        Returns:
            ``logits`` (B, C) in the graph's float dtype.
        """
        logits: NDArray[np.floating[Any]] = self.run_batch({INPUT_IDS: ids, LENGTHS: lengths}, [LOGITS])[0]
        return logits

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
            return self._run_bound(taken, [o.name for o in self.session.get_outputs()])
        # Any graph: its layout is not known (a time-major input has the time on dimension 0), so one call, whole.
        return self._run(None, taken)

    def _run_bound(self, feeds: dict[str, NDArray[Any]], outputs: list[str]) -> list[NDArray[Any]]:
        """One call with IO binding (CUDA): inputs are copied to the device once and each output comes back in one
        copy, instead of ORT staging every feed and fetch itself. A binding per call keeps concurrent calls apart."""
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in outputs:
            binding.bind_output(name, "cpu")
        try:
            self.session.run_with_iobinding(binding)
        except ORT_ERRORS as err:
            raise BundleError(f"ONNX Runtime failed to run {self.source}: {_one_line(err)}.") from err
        return list(binding.copy_outputs_to_cpu())


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
    if sys.platform.startswith("linux") and not any(path.exists() for path in _NVIDIA_DRIVER):
        return False, f"no NVIDIA GPU driver found ({' and '.join(map(str, _NVIDIA_DRIVER))} are missing)"
    # preload_dlls prints missing libraries on stdout, which carries results in the CLI: keep its words for the reason.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        ort.preload_dlls()
    options = config.session_options()
    # With CPU fallback disabled, session creation fails unless the LSTM node is placed on CUDA (cuDNN).
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        probe = ort.InferenceSession(_LSTM_PROBE, options, providers=[(CUDA, config.cuda_options())])
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


def _one_line(err: BaseException, limit: int = 400) -> str:
    """ONNX Runtime's message on one line (its messages span several), without its ``[ONNXRuntimeError] : N : X :``
    prefix, cut at ``limit`` characters."""
    text = " ".join(str(err).split())
    text = text.split(" : ", 3)[-1] if text.startswith("[ONNXRuntimeError]") else text
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def create_session(model: Path | bytes, config: SessionConfig) -> ModelSession:
    """Build the session for ``model`` on the provider ``config`` asks for.

    Args:
        model: Path of an ``.onnx`` file, or its bytes.
        config: Providers, threads, optimisation level.

    Returns:
        The session, with the chosen provider and why.

    Raises:
        ProviderError: ``cuda`` was asked for and cannot really run here (never a silent CPU fallback).
        BundleError: ONNX Runtime cannot load the model (garbage or truncated bytes, an operator it lacks, a graph
            that fails its shape inference); one line with ORT's reason.
    """
    source = str(model) if isinstance(model, Path) else model
    name = str(model) if isinstance(model, Path) else "the model"
    options = config.session_options()
    if config.providers == "cpu":
        return ModelSession(_build(source, options, [CPU]), CPU, "cpu requested", config, name)
    usable, reason = probe_cuda(config)
    if not usable:
        if config.providers == "cuda":
            # Only the CPU provider is proven usable here (TensorRT, also listed by onnxruntime-gpu, needs CUDA too).
            raise ProviderError(
                f"Provider '{CUDA}' is not available; available: {CPU} ({reason}). "
                "Use --provider cpu, or install onnxruntime-gpu with CUDA 13 and cuDNN 9 on a machine with a GPU."
            )
        return ModelSession(_build(source, options, [CPU]), CPU, f"auto: CPU, because {reason}", config, name)
    # The CPU provider stays listed for the few shape ops CUDA does not implement; the check below makes sure
    # CUDA itself was registered (ORT drops a provider that fails to start and carries on without it).
    session = _build(source, options, [(CUDA, config.cuda_options()), CPU])
    if session.get_providers()[0] != CUDA:
        raise ProviderError(f"Provider '{CUDA}' passed the probe but did not start for this model; use --provider cpu.")
    note = "cuda requested" if config.providers == "cuda" else f"auto: CUDA, because {reason}"
    return ModelSession(session, CUDA, note, config, name)


def _build(source: str | bytes, options: ort.SessionOptions, providers: list[Any]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except ORT_ERRORS as err:
        name = source if isinstance(source, str) else "the model"
        raise BundleError(
            f"ONNX Runtime cannot load {name}: {_one_line(err)}. The file is corrupt or truncated, or holds an "
            "operator or shape this ONNX Runtime cannot run; run `lstm-onnx export` again."
        ) from err


def runtime_session_config(providers: str, threads: int | None) -> SessionConfig:
    """The session settings behind ``lstm_onnx.load(..., threads=...)`` and the models' ``load``.

    Args:
        providers: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: Intra-op threads for every call (1..``MAX_THREADS``), each call run whole; ``None`` for the
            runtime's default: one thread, and calls of at least ``BATCH_MIN_ROWS`` rows and ``BATCH_MIN_TOKENS``
            padded tokens cut into ``BATCH_THREADS`` (at most the CPU count) parts run concurrently.

    Returns:
        The ``SessionConfig``.

    Raises:
        ConfigError: ``threads`` is not an int in 1..``MAX_THREADS``.
    """
    if threads is None:
        return SessionConfig(providers=providers, intra_op_threads=1, batch_threads=BATCH_THREADS)
    return SessionConfig(providers=providers, intra_op_threads=threads)
