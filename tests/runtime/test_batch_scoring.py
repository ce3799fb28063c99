"""BatchPredictor's engine contract (no engine needed) and local-process scoring end to end; Ray when installed."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.batch_predictor import BatchPredictor
from lstm_onnx.runtime.batch_scoring import score_file
from lstm_onnx.runtime.errors import DataError, EmptyInputError, MissingDependencyError
from lstm_onnx.runtime.records import prediction_record

TEXTS = ["A great and moving film.", "Awful, boring, a waste.", "The plot was quite fun.", "Dull acting."]


def _batch(texts: list[str]) -> dict[str, np.ndarray]:
    return {"id": np.array([f"r{i}" for i in range(len(texts))], dtype=object), "text": np.array(texts, dtype=object)}


def test_batch_predictor_pickles_before_and_after_first_call(tiny_bundle_dir: Path) -> None:
    predictor = BatchPredictor(tiny_bundle_dir)
    fresh = pickle.loads(pickle.dumps(predictor))
    predictor(_batch(TEXTS))
    used = pickle.loads(pickle.dumps(predictor))
    assert predictor.loads == 1
    assert fresh.loads == 0 and used.loads == 0 and used._model is None
    np.testing.assert_array_equal(used(_batch(TEXTS))["label"], predictor(_batch(TEXTS))["label"])


def test_batch_predictor_loads_once_over_many_calls(tiny_bundle_dir: Path) -> None:
    predictor = BatchPredictor(tiny_bundle_dir)
    assert predictor._model is None
    for _ in range(3):
        predictor(_batch(TEXTS))
    assert predictor.loads == 1


def test_batch_predictor_columns_match_text_classifier(tiny_bundle_dir: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    out = BatchPredictor(tiny_bundle_dir)(_batch(TEXTS))
    expected = tiny_model.predict(TEXTS)
    assert list(out["id"]) == ["r0", "r1", "r2", "r3"] and list(out["text"]) == TEXTS
    assert out["probabilities"].shape == (4, 2) and out["probabilities"].dtype == np.float32
    assert list(out["label"]) == [p.label for p in expected]
    assert [float(s) for s in out["score"]] == [p.score for p in expected]
    assert not out["truncated"].any()


def test_batch_predictor_empty_text_names_row_id(tiny_bundle_dir: Path) -> None:
    with pytest.raises(EmptyInputError, match=r"id='r1'"):
        BatchPredictor(tiny_bundle_dir)(_batch(["fine film", "   "]))


def test_batch_predictor_non_string_text_is_data_error(tiny_bundle_dir: Path) -> None:
    batch = {"id": np.array([7, 8]), "text": np.array(["fine film", None], dtype=object)}
    with pytest.raises(DataError, match=r"id=8.*NoneType"):
        BatchPredictor(tiny_bundle_dir)(batch)


def test_batch_predictor_missing_text_column(tiny_bundle_dir: Path) -> None:
    with pytest.raises(DataError, match="no 'review' column"):
        BatchPredictor(tiny_bundle_dir, text_column="review")(_batch(TEXTS))


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_score_file_local_matches_predict_records_in_order(
    tiny_bundle_dir: Path, tiny_model, tmp_path: Path, workers: int
) -> None:  # type: ignore[no-untyped-def]
    texts = [TEXTS[i % 4] + f" {i}" for i in range(23)]
    source = _write_jsonl(tmp_path / "in.jsonl", [{"id": f"x{i}", "text": t} for i, t in enumerate(texts)])
    report = score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", workers=workers, chunk_size=5)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    expected = [
        prediction_record(t, p, f"x{i}") for i, (t, p) in enumerate(zip(texts, tiny_model.predict(texts), strict=True))
    ]
    assert report.rows == 23 and [json.loads(line) for line in lines] == expected


def test_score_file_csv_without_ids_uses_row_positions(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text,other\n" + "".join(f'"{t}",x\n' for t in TEXTS), encoding="utf-8")
    score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2, 3] and [r["text"] for r in rows] == TEXTS


def test_score_file_bad_row_leaves_no_output(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "good film"}, {"id": "b", "text": ""}])
    with pytest.raises(EmptyInputError, match="id='b'"):
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize(
    ("name", "content", "phrase"),
    [
        ("in.txt", "x\n", "suffix '.txt'"),
        ("in.jsonl", "not json\n", "Line 1 of"),
        ("in.jsonl", "[" * 5000 + "\n", "Line 1 of"),
        ("in.csv", "id,text\n1,ok\n2," + "a" * 200_000 + "\n", "line 3: not readable CSV"),
        ("in.jsonl", '{"text": "a", "id": ' + "9" * 5000 + "}\n", "Line 1 of"),
        ("in.jsonl", '{"t": 1}\n', "no 'text'"),
    ],
)
def test_score_file_bad_input_is_data_error(
    tiny_bundle_dir: Path, tmp_path: Path, name: str, content: str, phrase: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=phrase):
        score_file(BatchPredictor(tiny_bundle_dir), tmp_path / name, tmp_path / "out.jsonl")


def test_parquet_without_pyarrow_names_the_extra(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "in.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"lstm-onnx\[ray\]"):
        score_file(BatchPredictor(tiny_bundle_dir), tmp_path / "in.parquet", tmp_path / "out.jsonl")


def test_predict_engine_local_cli_writes_output(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app, ["predict", str(tiny_bundle_dir), "--file", str(source), "--engine", "local", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "scored 4 texts" in result.stderr
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == [0, 1, 2, 3]


def test_predict_engine_needs_file_and_output(tiny_bundle_dir: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(tiny_bundle_dir), "good", "--engine", "local"])
    assert result.exit_code == 2 and "--engine scores --file" in result.stderr


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray cluster for this module's Ray tests (score_file joins a running cluster, and leaves it)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(
        num_cpus=3,
        object_store_memory=256 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_score_file_ray_matches_local(tiny_bundle_dir: Path, tmp_path: Path, ray_cluster: None) -> None:
    texts = [TEXTS[i % 4] + f" {i}" for i in range(40)]
    source = _write_jsonl(tmp_path / "in.jsonl", [{"id": i * 10, "text": t} for i, t in enumerate(texts)])
    score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "local.jsonl", chunk_size=8)
    score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "ray.jsonl", engine="ray", workers=1, chunk_size=8)
    assert (tmp_path / "ray.jsonl").read_text(encoding="utf-8") == (tmp_path / "local.jsonl").read_text(
        encoding="utf-8"
    )


def test_score_file_ray_bad_row_raises_the_toolkit_error(
    tiny_bundle_dir: Path, tmp_path: Path, ray_cluster: None
) -> None:
    """Ray Data wraps what an actor raises; the caller must get the row's own error back, not Ray's wrapper."""
    rows = [{"id": "a", "text": "great film"}, {"id": "b", "text": "   "}]
    source = _write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(EmptyInputError, match="Row id='b': Text is empty") as info:
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", engine="ray", workers=1)
    assert type(info.value) is EmptyInputError
    assert not (tmp_path / "out.jsonl").exists()


# ------------------------------------------------------------------ faults: bad ids, dead workers, signals, leftovers


def _non_finite_ids(tmp_path: Path, kind: str) -> Path:
    if kind == "jsonl":
        path = tmp_path / "in.jsonl"
        path.write_text('{"id": 1, "text": "great film"}\n{"id": NaN, "text": "awful film"}\n', encoding="utf-8")
        return path
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1.0, float("inf")], "text": ["great film", "awful film"]}), path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_non_finite_ids_are_refused_not_written_as_invalid_json(
    tiny_bundle_dir: Path, tmp_path: Path, kind: str
) -> None:
    """NaN and Infinity ids were written as `"id": NaN`, which no JSON reader accepts."""
    source = _non_finite_ids(tmp_path, kind)
    with pytest.raises(DataError, match=r"Row 1 has id (nan|inf), which JSON cannot hold"):
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_non_finite_ids_are_refused_under_ray_in_one_error(
    tiny_bundle_dir: Path, tmp_path: Path, kind: str, ray_cluster: None
) -> None:
    source = _non_finite_ids(tmp_path, kind)
    with pytest.raises(DataError, match=r"Row 1 has id (nan|inf), which JSON cannot hold") as info:
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", engine="ray", workers=1)
    assert type(info.value) is DataError
    assert not (tmp_path / "out.jsonl").exists()


def test_a_line_rays_reader_cannot_parse_is_one_error(tiny_bundle_dir: Path, tmp_path: Path, ray_cluster: None) -> None:
    """Ray's own errors (here its JSON reader's) came out as hundreds of lines of Ray tracebacks."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "great film"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"^Ray could not score .*in\.jsonl: ValueError: \S") as info:
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", engine="ray", workers=1)
    assert "\n" not in str(info.value) and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_text_names_its_row_not_its_place_in_a_chunk(tiny_bundle_dir: Path, tmp_path: Path, workers: int) -> None:
    """An empty text at row 15,000 was reported as "position 664", its place in its chunk of 1,024."""
    rows = [{"text": "" if i == 15_000 else f"great film {i}"} for i in range(16_000)]
    source = _write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(EmptyInputError) as info:
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", workers=workers)
    assert str(info.value).startswith("Row 15000 (id=15000): Text is empty") and "position" not in str(info.value)


def _big_input(tmp_path: Path, rows: int = 150_000) -> Path:
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(
            f'{{"id": {i}, "text": "great film number {i}, the plot was really quite dull"}}\n' for i in range(rows)
        )
    return path


class _Scoring:
    """`lstm-onnx score --workers 2` in a process of its own, running (workers started, output being written)."""

    def __init__(self, bundle: Path, tmp_path: Path) -> None:
        import subprocess
        import sys
        import time

        psutil = pytest.importorskip("psutil")
        self.out = tmp_path / "out.jsonl"
        args = ["score", str(bundle), "--file", str(_big_input(tmp_path)), "-o", str(self.out), "--workers", "2"]
        code = f"from lstm_onnx.cli import app\napp({args!r}, prog_name='lstm-onnx')\n"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + 120
        self.workers: list = []  # type: ignore[type-arg]
        while time.monotonic() < deadline and self.process.poll() is None:
            children = psutil.Process(self.process.pid).children()
            self.workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
            if len(self.workers) == 2 and list(tmp_path.glob(".out.jsonl.*.tmp")):
                time.sleep(0.5)  # chunks are being scored
                return
            time.sleep(0.05)
        raise AssertionError(f"scoring did not get under way: {self.finish(0)}")

    def finish(self, timeout: float = 60) -> tuple[int | None, str]:
        import subprocess

        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            for worker in self.workers:
                with contextlib.suppress(Exception):
                    worker.kill()
        assert self.process.stderr is not None
        with self.process.stderr:
            return self.process.returncode, self.process.stderr.read()


def test_a_killed_worker_fails_the_run_in_one_line(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """kill -9 of one worker (the out-of-memory killer does the same) hung the run forever."""
    import signal

    run = _Scoring(tiny_bundle_dir, tmp_path)
    run.workers[0].send_signal(signal.SIGKILL)
    code, err = run.finish()
    assert code == 1, err
    assert err.startswith("error: A worker process died") and err.count("\n") == 1, err
    assert re.search(r"rows \d+-\d+ of .*big\.jsonl were being scored; nothing was written", err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]


def test_sigterm_stops_scoring_as_ctrl_c_does(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """SIGTERM left a partial temporary file and BrokenPipe tracebacks from the workers."""
    import signal

    run = _Scoring(tiny_bundle_dir, tmp_path)
    run.process.send_signal(signal.SIGTERM)
    code, err = run.finish()
    assert code == 143 and err == "", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]
    assert not any(worker.is_running() and worker.status() != "zombie" for worker in run.workers)


def test_leftovers_of_killed_runs_are_swept(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed outright leaves its temporary output and its archive's extraction folder; the next run removes
    those whose process no longer runs, and only those."""
    import shutil
    import subprocess
    import sys
    import tempfile

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    alive = os.getppid()
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    (system_tmp / f"lstm-onnx-bundle-{dead}-x1y2").mkdir()
    (system_tmp / f"lstm-onnx-bundle-{dead}-x1y2" / "model.onnx").write_bytes(b"partial")
    (system_tmp / f"lstm-onnx-bundle-{alive}-a3b4").mkdir()
    folder = tmp_path / "scores"
    folder.mkdir()
    (folder / f".out.jsonl.{dead}.tmp").write_text("half a line", encoding="utf-8")
    (folder / f".out.jsonl.{alive}.tmp").write_text("another run's", encoding="utf-8")
    archive = Path(shutil.make_archive(str(tmp_path / "bundle"), "zip", tiny_bundle_dir))
    source = _write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    score_file(BatchPredictor(archive), source, folder / "out.jsonl")
    assert sorted(p.name for p in system_tmp.iterdir()) == [f"lstm-onnx-bundle-{alive}-a3b4"]
    assert sorted(p.name for p in folder.iterdir()) == [f".out.jsonl.{alive}.tmp", "out.jsonl"]
