"""``lstm-onnx score`` (also ``predict --engine``) and ``lstm-onnx serve``: parse, call one library function, render.

Neither imports Ray unless it is asked to run on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from lstm_onnx.runtime.atomic import write_failure
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_TEXT_CHARS, MAX_WORKERS

__all__ = ["Engine", "WorkersOpt", "check_output_file", "run_score", "score_command", "serve_command"]


class Engine(str, Enum):
    """Where batch scoring runs."""

    LOCAL = "local"
    RAY = "ray"


BundleArg = Annotated[
    Path, typer.Argument(help="Bundle directory written by `lstm-onnx export`.", exists=True, file_okay=False)
]
EngineOpt = Annotated[
    Engine, typer.Option("--engine", help="local: worker processes here; ray: Ray Data (joins or starts a cluster).")
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Worker processes or Ray actors.", min=1, max=MAX_WORKERS)]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to write (replaced atomically).")]


def run_score(
    bundle: Path,
    file: Path,
    output: Path,
    engine: Engine,
    workers: int,
    batch_size: int,
    truncate: bool,
    max_length: int | None,
    quiet: bool,
    max_chars: int | None = None,
) -> None:
    """Score ``file`` into ``output`` and report rows and speed on stderr (shared by ``score`` and ``predict``)."""
    from lstm_onnx.runtime.batch_predictor import BatchPredictor
    from lstm_onnx.runtime.batch_scoring import score_file

    check_output_file(output)
    predictor = BatchPredictor(
        bundle, batch_size=batch_size, max_length=max_length, truncate=truncate, max_chars=max_chars
    )
    start = time.perf_counter()
    try:
        with _sigterm_like_ctrl_c():
            report = score_file(predictor, file, output, engine=engine.value, workers=workers)
    except OSError as err:
        if err.errno not in _OUT_OF_ROOM:
            raise
        raise write_failure(err, output) from err  # the scorer removes its temporary file on the way out
    seconds = time.perf_counter() - start
    if not quiet:
        rate = report.rows / seconds if seconds > 0 else float("inf")
        print(
            f"scored {report.rows} texts into {report.output} with {report.workers} {report.engine} worker(s) "
            f"in {seconds:.1f} s ({rate:.0f} texts/s)",
            file=sys.stderr,
        )


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that both unwind the same way."""


@contextlib.contextmanager
def _sigterm_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, ``docker stop``, a scheduler) ends scoring as Ctrl-C does: workers stopped, the temporary
    output removed, nothing written; the exit code is then 143 (Ctrl-C's is 130)."""

    def interrupt(signum: int, frame: object) -> None:
        raise _Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except _Terminated:
        raise typer.Exit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


# Errors only a write meets: the output ran out of room (disk, quota, file size) or its file system is read-only.
_OUT_OF_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def check_output_file(output: Path) -> None:
    """Make sure a file can be created at ``output`` before any scoring starts.

    Raises:
        DataError: ``output`` is a folder, or its folder does not exist.
        WriteError: No file can be created in its folder (read-only file system, no permission, /proc).
    """
    if output.is_dir():
        raise DataError(f"--output {output} is a folder; give the path of the .jsonl file to write.")
    parent = output.parent
    if not parent.is_dir():
        raise DataError(f"--output {output}: the folder {parent} does not exist; create it, or choose another path.")
    try:  # the scorer writes a temporary file there and renames it: prove that can be done before scoring
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{output.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise write_failure(err, output) from err


def score_command(
    bundle: BundleArg,
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            help="Input: .jsonl (objects with 'text', optional 'id'), .csv/.tsv (text and id columns) or .parquet.",
            exists=True,
            dir_okay=False,
        ),
    ],
    output: OutputOpt,
    engine: EngineOpt = Engine.LOCAL,
    workers: WorkersOpt = 1,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Most texts per ONNX Runtime call.", min=1, max=MAX_BATCH_SIZE)
    ] = 32,
    truncate: Annotated[bool, typer.Option("--truncate/--no-truncate", help="Cut texts over max_length.")] = False,
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Token limit per text.", min=1, max=MAX_TEXT_CHARS)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only on stderr.")] = False,
    max_chars: Annotated[
        int | None,
        typer.Option(
            "--max-chars",
            help="Character limit per text, checked before tokenizing (default: the bundle's).",
            min=1,
            max=MAX_TEXT_CHARS,
        ),
    ] = None,
) -> None:
    """Score a big file into a JSON Lines file, in input order with each row's id, on local processes or Ray."""
    run_score(bundle, file, output, engine, workers, batch_size, truncate, max_length, quiet, max_chars)


def serve_command(
    bundle: BundleArg,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port.", min=1, max=65535)] = 8000,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", help="Most texts the server batches into one model call.", min=1)
    ] = 64,
    batch_wait_ms: Annotated[
        float, typer.Option("--batch-wait-ms", help="How long a batch waits to fill up, in ms.", min=0.0, max=10_000)
    ] = 5.0,
    max_texts: Annotated[int, typer.Option("--max-texts", help="Most texts in one request.", min=1)] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="Largest request body accepted, in bytes.", min=1)
    ] = 1_048_576,
    max_request_chars: Annotated[
        int, typer.Option("--max-request-chars", help="Most characters in all texts of one request (413).", min=1)
    ] = 262_144,
    max_connections: Annotated[
        int, typer.Option("--max-connections", help="Open connections beyond which requests get 503.", min=1)
    ] = 2_048,
    max_in_flight: Annotated[
        int, typer.Option("--max-in-flight", help="Requests waiting for the model at once; more get 503.", min=1)
    ] = 64,
    client_timeout_s: Annotated[
        float,
        typer.Option(
            "--client-timeout-s", help="Time to send a request's head, then its body (408).", min=0.1, max=3600
        ),
    ] = 10.0,
    request_timeout_s: Annotated[
        float,
        typer.Option("--request-timeout-s", help="Time the model has to answer a request (504).", min=0.1, max=3600),
    ] = 30.0,
    grace_s: Annotated[
        float,
        typer.Option("--grace-s", help="On SIGTERM, time to answer the requests received, then exit.", min=0, max=3600),
    ] = 30.0,
) -> None:
    """Serve a bundle over HTTP, the model on Ray Serve: POST /predict, GET /health, OpenAPI at /docs."""
    from lstm_onnx.runtime.serve import ServeSettings, serve_forever

    settings = ServeSettings(
        bundle=str(bundle.resolve()),
        max_batch_size=max_batch_size,
        batch_wait_s=batch_wait_ms / 1000,
        max_texts=max_texts,
        max_body_bytes=max_body_bytes,
        max_request_chars=max_request_chars,
        max_connections=max_connections,
        max_in_flight=max_in_flight,
        client_timeout_s=client_timeout_s,
        request_timeout_s=request_timeout_s,
        grace_s=grace_s,
    )
    serve_forever(settings, host=host, port=port, announce=lambda msg: print(msg, file=sys.stderr))
