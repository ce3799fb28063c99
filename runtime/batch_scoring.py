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

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_onnx.runtime.batch_inputs import Chunk, input_format, read_chunks
from lstm_onnx.runtime.batch_predictor import BatchPredictor, predictions_from_columns
from lstm_onnx.runtime.errors import DataError, MissingDependencyError, ToolkitError
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


def render_block(columns: dict[str, Any], ids: list[Any], labels: list[str], text_column: str) -> str:
    """JSON Lines for one scored batch: ``prediction_record`` per row, ``id`` first."""
    preds = predictions_from_columns(columns, labels)
    lines = (
        json_line(prediction_record(str(text), pred, _plain(row_id)))
        for row_id, text, pred in zip(ids, columns[text_column], preds, strict=True)
    )
    return "".join(line + "\n" for line in lines)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- local processes -------------------------------------------------------------------------------------

# The predictor of this worker process, set once by the pool's initializer so each process loads one session.
_WORKER_PREDICTOR: BatchPredictor | None = None


def _init_worker(predictor: BatchPredictor) -> None:
    global _WORKER_PREDICTOR
    _WORKER_PREDICTOR = predictor


def _score_chunk_in_worker(chunk: Chunk) -> tuple[int, str]:
    if _WORKER_PREDICTOR is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("worker predictor not initialised")
    return _score_chunk(_WORKER_PREDICTOR, chunk)


def _score_chunk(predictor: BatchPredictor, chunk: Chunk) -> tuple[int, str]:
    ids, texts = chunk
    batch = {predictor.text_column: np.array(texts, dtype=object), predictor.id_column: np.array(ids, dtype=object)}
    columns = predictor(batch)
    return len(texts), render_block(columns, ids, predictor.labels, predictor.text_column)


def _score_local(predictor: BatchPredictor, source: Path, workers: int, chunk_size: int) -> Iterator[tuple[int, str]]:
    chunks = read_chunks(source, chunk_size, predictor.text_column, predictor.id_column)
    if workers == 1:
        for chunk in chunks:
            yield _score_chunk(predictor, chunk)
        return
    # spawn, not fork: a forked child would inherit ONNX Runtime's threads from a parent that has a session.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(predictor,)) as pool:
        pending: deque[Any] = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_score_chunk_in_worker, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


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
        try:
            for batch in dataset.iter_batches(batch_size=chunk_size, batch_format="numpy"):
                n = len(batch[predictor.text_column])
                ids = list(batch[predictor.id_column]) if predictor.id_column in batch else None
                ids = ids if ids is not None else list(range(position, position + n))
                yield n, render_block(batch, ids, labels, predictor.text_column)
                position += n
        except ray.exceptions.RayError as err:
            raise _toolkit_error_from(err) from err
    finally:
        if started:
            ray.shutdown()


def _read_jsonl(path: str) -> Any:
    import ray.data

    return ray.data.read_json(path, lines=True)


def _toolkit_error_from(err: Exception) -> Exception:
    """The project error a Ray task raised (Ray wraps it), or the Ray error itself."""
    import ray.exceptions

    cause: BaseException | None = err
    while cause is not None:
        # A RayTaskError is rebuilt as a subclass of its cause's type too: go on to the cause itself.
        if isinstance(cause, ToolkitError) and not isinstance(cause, ray.exceptions.RayError):
            return type(cause)(*cause.args)
        cause = getattr(cause, "cause", None) or cause.__cause__
    return err
