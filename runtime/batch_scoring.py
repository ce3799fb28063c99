"""Score a JSONL/CSV/Parquet file into a JSON Lines file, in input order, on local processes or on Ray Data.

Each output line is the record ``lstm-onnx predict --format jsonl`` prints, with the row's ``id`` first. The output
is written to a temporary name beside the target and renamed when every row is scored, so a failure leaves no
half-written file.

- ``engine="local"``: ``workers`` processes, each with its own ONNX Runtime session (one thread) and tokenizing
  its own chunks; chunks go out in order and at most two per worker are in flight, so memory stays flat whatever
  the file's size. One worker scores in this process.
- ``engine="ray"``: Ray Data reads the file, ``BatchPredictor`` actors (``workers`` of them) score it, and this
  process writes the batches in order. It joins the running Ray cluster, or starts a small local one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_onnx.runtime.batch_inputs import Chunk, input_format, read_chunks
from lstm_onnx.runtime.batch_predictor import BatchPredictor, predictions_from_columns
from lstm_onnx.runtime.errors import DataError, MissingDependencyError, ToolkitError, WorkerLostError
from lstm_onnx.runtime.leftovers import sweep
from lstm_onnx.runtime.records import json_line, prediction_record

__all__ = ["ENGINES", "RAY_MISSING", "ScoreReport", "score_file"]

ENGINES = ("local", "ray")
RAY_MISSING = "`--engine ray` needs Ray, which is not installed. Install: pip install 'lstm-onnx[ray]'."
# Ray's shared-memory object store for a local cluster: batches of text are small, and the machine is shared.
RAY_OBJECT_STORE_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class ScoreReport:
    """What ``score_file`` did.

    Attributes:
        rows: Texts scored.
        output: The JSON Lines file written.
        engine: ``"local"`` or ``"ray"``.
        workers: Processes or actors that scored.
    """

    rows: int
    output: Path
    engine: str
    workers: int


def score_file(
    predictor: BatchPredictor,
    source: Path,
    output: Path,
    *,
    engine: str = "local",
    workers: int = 1,
    chunk_size: int = 1024,
) -> ScoreReport:
    """Score every row of ``source`` and write the records to ``output`` (JSON Lines), in input order.

    Args:
        predictor: The (unloaded or loaded) predictor; each worker gets a copy and loads its own session.
        source: A .jsonl, .csv or .parquet file with a ``predictor.text_column`` (and optionally an id column).
        output: The .jsonl file to write (replaced atomically if it exists).
        engine: ``"local"`` (processes) or ``"ray"`` (Ray Data).
        workers: Processes or Ray actors.
        chunk_size: Rows per task (and per Ray batch).

    Returns:
        A ``ScoreReport``.

    Raises:
        DataError: The input is missing or malformed, or a row has no string text (names its id).
        EmptyInputError, InputTooLongError: A text breaks the input rules (names its id).
        MissingDependencyError: Ray (for ``engine="ray"``) or pyarrow (for Parquet) is not installed.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if workers < 1 or chunk_size < 1:
        raise ValueError(f"workers and chunk_size must be >= 1, got {workers} and {chunk_size}.")
    fmt = input_format(source)
    if output.suffix.lower() not in (".jsonl", ".ndjson"):
        raise DataError(f"Output file {output} must end in .jsonl: batch scoring writes JSON Lines records.")
    if output.resolve() == source.resolve():
        raise DataError(f"Output file {output} is the input file; write the scores somewhere else.")
    labels = predictor.labels  # loads the bundle here first: a bad bundle fails before any worker starts
    blocks = (
        _score_local(predictor, source, workers, chunk_size)
        if engine == "local"
        else _score_ray(predictor, source, fmt, workers, chunk_size, labels)
    )
    rows = _write_atomically(output, blocks)
    return ScoreReport(rows=rows, output=output, engine=engine, workers=workers)


def _write_atomically(output: Path, blocks: Iterator[tuple[int, str]]) -> int:
    sweep(output.parent, f".{output.name}.", ".tmp")  # what runs killed outright left
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for n, block in blocks:
                fh.write(block)
                rows += n
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def render_block(
    columns: dict[str, Any], ids: list[Any], labels: list[str], text_column: str, first_row: int | None = None
) -> str:
    """JSON Lines for one scored batch: ``prediction_record`` per row, ``id`` first.

    Raises:
        DataError: An id is a number JSON cannot hold (NaN, Infinity); names the row when ``first_row`` is known.
    """
    preds = predictions_from_columns(columns, labels)
    lines = []
    for i, (row_id, text, pred) in enumerate(zip(ids, columns[text_column], preds, strict=True)):
        plain = _plain(row_id)
        if isinstance(plain, float) and not math.isfinite(plain):
            row = f"Row {first_row + i}" if first_row is not None else "A row"
            raise DataError(f"{row} has id {plain!r}, which JSON cannot hold; give ids as strings or finite numbers.")
        lines.append(json_line(prediction_record(str(text), pred, plain)) + "\n")
    return "".join(lines)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- local processes -------------------------------------------------------------------------------------

# The predictor of this worker process, set once by the pool's initializer so each process loads one session.
_WORKER_PREDICTOR: BatchPredictor | None = None


def _init_worker(predictor: BatchPredictor) -> None:
    global _WORKER_PREDICTOR
    _WORKER_PREDICTOR = predictor


def _score_chunk_in_worker(chunk: Chunk, first_row: int) -> tuple[int, str]:
    if _WORKER_PREDICTOR is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker predictor not initialised")
    return _score_chunk(_WORKER_PREDICTOR, chunk, first_row)


def _init_worker_process(predictor: BatchPredictor) -> None:
    # Ctrl-C reaches the whole process group, and so does the SIGTERM of `timeout` or `kill -- -PGID`: the workers
    # leave the group, and the parent stops them in order (a worker killed while it sends a result can leave the
    # executor waiting forever for the rest). They still end with the parent: their pipe to it closes.
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed outright (kill -9, out of memory) would leave the workers blocked on a pipe forever.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="exit-with-parent", daemon=True).start()
    _init_worker(predictor)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _score_chunk(predictor: BatchPredictor, chunk: Chunk, first_row: int) -> tuple[int, str]:
    ids, texts = chunk
    batch = {predictor.text_column: np.array(texts, dtype=object), predictor.id_column: np.array(ids, dtype=object)}
    columns = predictor.call(batch, first_row)
    return len(texts), render_block(columns, ids, predictor.labels, predictor.text_column, first_row)


def _score_local(predictor: BatchPredictor, source: Path, workers: int, chunk_size: int) -> Iterator[tuple[int, str]]:
    chunks = read_chunks(source, chunk_size, predictor.text_column, predictor.id_column)
    first_row = 0
    if workers == 1:
        for chunk in chunks:
            yield _score_chunk(predictor, chunk, first_row)
            first_row += len(chunk[1])
        return
    # spawn, not fork: a forked child would inherit ONNX Runtime's threads from a parent that has a session.
    # A ProcessPoolExecutor, not a multiprocessing.Pool: a Pool replaces a worker that died (kill -9, out of memory)
    # and waits forever for the chunk it held; the executor fails every pending chunk with BrokenProcessPool.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker_process,
        initargs=(predictor,),
    )
    pending: deque[tuple[int, int, Future[tuple[int, str]]]] = deque()  # (first row, rows, result)
    try:
        for chunk in chunks:
            pending.append((first_row, len(chunk[1]), pool.submit(_score_chunk_in_worker, chunk, first_row)))
            first_row += len(chunk[1])
            if len(pending) >= 2 * workers:
                yield _next_block(pending, source)
        while pending:
            yield _next_block(pending, source)
    finally:
        # On an error, Ctrl-C, SIGTERM or a reader that stopped: drop the chunks not started and wait for those being
        # scored (a chunk's time). Terminating a worker instead can cut a result in half on its pipe, and the
        # executor then waits forever for the rest.
        pool.shutdown(wait=True, cancel_futures=True)


def _next_block(pending: deque[tuple[int, int, Future[tuple[int, str]]]], source: Path) -> tuple[int, str]:
    first, _, future = pending[0]
    try:
        block = future.result()
    except BrokenProcessPool as err:
        last = pending[-1][0] + pending[-1][1] - 1
        raise WorkerLostError(
            f"A worker process died (killed, e.g. out of memory) while rows {first}-{last} of {source} were being "
            "scored; nothing was written. Run again; if memory ran out, use fewer --workers or a smaller --batch-size."
        ) from err
    pending.popleft()
    return block


# --- Ray Data --------------------------------------------------------------------------------------------


def _score_ray(
    predictor: BatchPredictor, source: Path, fmt: str, workers: int, chunk_size: int, labels: list[str]
) -> Iterator[tuple[int, str]]:
    try:
        import ray
        import ray.data
    except ModuleNotFoundError as err:
        raise MissingDependencyError(RAY_MISSING) from err
    started = not ray.is_initialized()
    if started:
        ray.init(
            # One logical CPU per scoring actor plus one for the read tasks: with none left over the readers
            # never get scheduled and the job waits forever.
            num_cpus=workers + 1,
            object_store_memory=RAY_OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        # Ray Data otherwise raises a UserCodeException whose cause (our ToolkitError, naming the row) does not survive
        # the trip from the actor; this keeps it as the RayTaskError's cause, for _toolkit_error_from.
        context.raise_original_map_exception = True
        reader: Any = {"jsonl": _read_jsonl, "csv": ray.data.read_csv, "parquet": ray.data.read_parquet}[fmt]
        dataset = reader(str(source)).map_batches(
            BatchPredictor,
            fn_constructor_kwargs=predictor.settings(),
            batch_size=chunk_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        position = 0
        # Ray Data logs a failed task's whole stack (several times) before raising it; the error raised here says
        # what failed in one line.
        with _quiet_logger("ray.data"):
            try:
                for batch in dataset.iter_batches(batch_size=chunk_size, batch_format="numpy"):
                    n = len(batch[predictor.text_column])
                    ids = list(batch[predictor.id_column]) if predictor.id_column in batch else None
                    ids = ids if ids is not None else list(range(position, position + n))
                    yield n, render_block(batch, ids, labels, predictor.text_column, position)
                    position += n
            except ray.exceptions.RayError as err:
                raise _toolkit_error_from(err, source) from err
    finally:
        if started:
            ray.shutdown()


def _read_jsonl(path: str) -> Any:
    import ray.data

    return ray.data.read_json(path, lines=True)


def _toolkit_error_from(err: Exception, source: Path) -> Exception:
    """The project error a Ray task raised (Ray wraps it); else a ``DataError`` naming the task's own error in one
    line (a row Ray's reader cannot parse, ...)."""
    import ray.exceptions

    cause: BaseException | None = err
    innermost: BaseException = err
    while cause is not None:
        # A RayTaskError is rebuilt as a subclass of its cause's type too: go on to the cause itself.
        if isinstance(cause, ToolkitError) and not isinstance(cause, ray.exceptions.RayError):
            return type(cause)(*cause.args)
        if not isinstance(cause, ray.exceptions.RayError):
            innermost = cause
        cause = getattr(cause, "cause", None) or cause.__cause__
    first_line = (str(innermost).strip().splitlines() or [""])[0]
    return DataError(f"Ray could not score {source}: {type(innermost).__name__}: {first_line}")


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
