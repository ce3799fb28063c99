"""BatchPredictor's engine contract (no engine needed) and local-process scoring end to end; Ray when installed."""

from __future__ import annotations

import json
import pickle
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


def test_score_file_ray_matches_local(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray.data")
    texts = [TEXTS[i % 4] + f" {i}" for i in range(40)]
    source = _write_jsonl(tmp_path / "in.jsonl", [{"id": i * 10, "text": t} for i, t in enumerate(texts)])
    score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "local.jsonl", chunk_size=8)
    score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "ray.jsonl", engine="ray", workers=1, chunk_size=8)
    assert (tmp_path / "ray.jsonl").read_text(encoding="utf-8") == (tmp_path / "local.jsonl").read_text(
        encoding="utf-8"
    )


def test_score_file_ray_bad_row_raises_the_toolkit_error(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """Ray Data wraps what an actor raises; the caller must get the row's own error back, not Ray's wrapper."""
    pytest.importorskip("ray.data")
    rows = [{"id": "a", "text": "great film"}, {"id": "b", "text": "   "}]
    source = _write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(EmptyInputError, match="row id='b'") as info:
        score_file(BatchPredictor(tiny_bundle_dir), source, tmp_path / "out.jsonl", engine="ray", workers=1)
    assert type(info.value) is EmptyInputError
    assert not (tmp_path / "out.jsonl").exists()
