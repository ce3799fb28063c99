"""`lstm-onnx predict` over files and pipes: --on-error fail|skip|null, JSON Lines on stdin, ids carried through."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.line_inputs import items_from_args, predict_items, read_items
from lstm_onnx.runtime.predictor import TextClassifier

runner = CliRunner()
_MIXED = (
    '{"id": "a1", "text": "a great and moving film"}\n'
    '{"id": "a2", "text": "   "}\n'
    "not json at all\n"
    '{"id": "a4", "text": null}\n'
    '{"id": 5, "text": "dull and boring"}\n'
)


def _predict(bundle: Path, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["predict", str(bundle), *args], input=stdin)


def _jsonl(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_predict_on_error_fail_stops_at_the_first_bad_line_naming_it(tiny_bundle_dir: Path) -> None:
    result = _predict(tiny_bundle_dir, "--file", "-", stdin=_MIXED)
    assert result.exit_code == 1
    assert [row["id"] for row in _jsonl(result.stdout)] == ["a1"]
    assert result.stderr.startswith("error: line 2 of stdin: Text is empty")
    assert "--on-error skip or null" in result.stderr


def test_predict_on_error_skip_reports_each_bad_line_and_scores_the_rest(tiny_bundle_dir: Path) -> None:
    result = _predict(tiny_bundle_dir, "--file", "-", "--on-error", "skip", stdin=_MIXED)
    assert result.exit_code == 1
    assert [row["id"] for row in _jsonl(result.stdout)] == ["a1", 5]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: line 2 of stdin: Text is empty")
    assert errors[1].startswith("error: line 3 of stdin: not JSON")
    assert errors[2].startswith("error: line 4 of stdin: 'text' is null, not a string")
    assert (
        errors[3]
        == "error: 3 text(s) could not be scored (each reported above on stderr); the output holds the others."
    )


def test_predict_on_error_null_keeps_every_line_in_order(tiny_bundle_dir: Path) -> None:
    result = _predict(tiny_bundle_dir, "--file", "-", "--on-error", "null", stdin=_MIXED)
    assert result.exit_code == 1
    rows = _jsonl(result.stdout)
    assert [row["id"] for row in rows] == ["a1", "a2", 3, "a4", 5]
    assert [row["label"] is None for row in rows] == [False, True, True, True, False]
    assert rows[1]["error"].startswith("Text is empty") and rows[2]["text"] is None  # type: ignore[union-attr]


def test_predict_all_good_lines_exit_0_with_ids_and_same_scores_as_library(tiny_bundle_dir: Path) -> None:
    lines = '{"id": "x", "text": "a great film"}\n{"text": "an awful film"}\n'
    result = _predict(tiny_bundle_dir, "--file", "-", "--on-error", "skip", stdin=lines)
    assert result.exit_code == 0, result.stderr
    rows = _jsonl(result.stdout)
    assert [row["id"] for row in rows] == ["x", 2]  # no id field: the line number
    expected = TextClassifier.load(tiny_bundle_dir, providers="cpu").predict(["a great film", "an awful film"])
    assert [row["probabilities"] for row in rows] == [p.probabilities for p in expected]


def test_predict_stdin_jsonl_is_detected_not_scored_as_literal_json(tiny_bundle_dir: Path) -> None:
    result = _predict(tiny_bundle_dir, "--file", "-", stdin='{"text": "a great film"}\n')
    assert result.exit_code == 0, result.stderr
    assert _jsonl(result.stdout)[0]["text"] == "a great film"


def test_predict_input_format_text_scores_braces_literally(tiny_bundle_dir: Path) -> None:
    result = _predict(tiny_bundle_dir, "--file", "-", "--input-format", "text", stdin='{"text": "a great film"}\n')
    assert result.exit_code == 0, result.stderr
    assert _jsonl(result.stdout)[0]["text"] == '{"text": "a great film"}'


def test_predict_custom_text_and_id_fields(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"review": "a great film", "key": 17}\n', encoding="utf-8")
    result = _predict(tiny_bundle_dir, "--file", str(data), "--text-field", "review", "--id-field", "key")
    assert result.exit_code == 0, result.stderr
    assert _jsonl(result.stdout)[0]["id"] == 17


def test_predict_csv_null_rows_carry_id_and_error_and_neutralise_formulas(tiny_bundle_dir: Path) -> None:
    lines = '{"id": "=HYPERLINK(1)", "text": "a great film"}\n{"id": "b", "text": ""}\n'
    result = _predict(tiny_bundle_dir, "--file", "-", "--on-error", "null", "--format", "csv", stdin=lines)
    assert result.exit_code == 1
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][0] == "id" and rows[0][-1] == "error"
    assert rows[1][0] == "'=HYPERLINK(1)" and rows[1][-1] == ""
    assert rows[2][0] == "b" and rows[2][2] == "" and rows[2][-1].startswith("Text is empty")


def test_read_items_text_file_drops_bom_and_numbers_lines(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_bytes("\ufefffirst\nsecond\n".encode())
    items = list(read_items(str(data)))
    assert [(i.text, i.id, i.where) for i in items] == [
        ("first", 1, "line 1 of in.txt"),
        ("second", 2, "line 2 of in.txt"),
    ]


@pytest.mark.parametrize("bad_id", ["[1]", "true", '{"a": 1}', "null"])
def test_read_items_rejects_non_scalar_ids(tmp_path: Path, bad_id: str) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text(f'{{"id": {bad_id}, "text": "fine"}}\n', encoding="utf-8")
    (item,) = read_items(str(data))
    assert item.text is None and item.error is not None and "'id' must be a string or number" in item.error


def test_predict_items_reads_a_one_shot_iterator_once_in_order(tiny_bundle_dir: Path) -> None:
    model = TextClassifier.load(tiny_bundle_dir, providers="cpu")
    texts = iter(["great", "", "awful"])
    outcomes = list(predict_items(model, items_from_args(texts), chunk_size=2))
    assert [item.id for item, _ in outcomes] == [1, 2, 3]
    assert isinstance(outcomes[1][1], str) and not isinstance(outcomes[0][1], str)
