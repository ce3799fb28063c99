"""TokenTagger (torch-free): tag, tag_tokens, input errors, lstm_onnx.load dispatch, CLI predict and evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import lstm_onnx
from lstm_onnx.cli import app
from lstm_onnx.runtime.errors import BundleError, EmptyInputError
from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.tagger import TokenTagger
from lstm_onnx.runtime.tagging_eval import tag_report


@pytest.fixture(scope="module")
def tagger(tiny_tag_bundle_dir: Path) -> TokenTagger:
    return TokenTagger.load(tiny_tag_bundle_dir, providers="cpu")


def test_tagger_tag_tokens(tagger: TokenTagger) -> None:
    [result] = tagger.tag_tokens([["The", "cat", "sees", "a", "dog", "."]])
    assert result.tags == ["DET", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]
    assert all(0.0 < s <= 1.0 for s in result.scores)
    assert result.probs.shape == (6, 5)
    assert abs(float(result.probs.sum(axis=1).max()) - 1.0) < 1e-5


def test_tagger_tag_raw_text_uses_bundle_tokenizer(tagger: TokenTagger) -> None:
    [result] = tagger.tag(["The dog likes a tree!"])
    assert result.tokens == ["The", "dog", "likes", "a", "tree", "!"]
    assert result.tags[-1] == "PUNCT"


def test_tagger_order_restored(tagger: TokenTagger) -> None:
    sentences = [["A", "cat", "finds", "the", "big", "red", "house", "."], ["Dog"], ["The", "film", "."]]
    together = tagger.tag_tokens(sentences)
    assert [r.tokens for r in together] == sentences
    assert [r.tags for r in together] == [tagger.tag_tokens([s])[0].tags for s in sentences]


@pytest.mark.parametrize(
    ("call", "error", "phrase"),
    [
        (lambda t: t.tag(["fine", "   "]), EmptyInputError, "position 1"),
        (lambda t: t.tag([3]), TypeError, "position 0"),
        (lambda t: t.tag("a text"), TypeError, "list of texts"),
        (lambda t: t.tag_tokens([["a"], []]), EmptyInputError, "position 1"),
        (lambda t: t.tag_tokens([["a", ""]]), EmptyInputError, "Token 1 of sentence 0"),
        (lambda t: t.tag_tokens(["abc"]), TypeError, "not a list of tokens"),
    ],
)
def test_tagger_bad_input(tagger: TokenTagger, call, error, phrase) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=phrase):
        call(tagger)


def test_load_dispatches_on_task(tiny_tag_bundle_dir: Path) -> None:
    assert isinstance(lstm_onnx.load(tiny_tag_bundle_dir, providers="cpu"), TokenTagger)


def test_cli_predict_tagging_jsonl_and_conllu(tiny_tag_bundle_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tiny_tag_bundle_dir), "The cat sees a dog."])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["tokens"] == ["The", "cat", "sees", "a", "dog", "."] and len(row["tags"]) == 6
    result = runner.invoke(app, ["predict", str(tiny_tag_bundle_dir), "The cat sees a dog.", "--format", "conllu"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "# sent_id = 1" and lines[1].split("\t")[:4] == ["1", "The", "_", "DET"]
    result = runner.invoke(app, ["predict", str(tiny_tag_bundle_dir), "x", "--format", "csv"])
    assert result.exit_code == 1 and "tagging bundle writes jsonl or conllu" in result.stderr


def test_cli_predict_tagging_conllu_file(tiny_tag_bundle_dir: Path, tiny_tag_data: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["predict", str(tiny_tag_bundle_dir), "--file", str(tiny_tag_data / "tiny-test.conllu"), "--format", "conllu"],
    )
    assert result.exit_code == 0
    assert result.stdout.count("# sent_id") == 12


def test_cli_evaluate_tagging(tiny_tag_bundle_dir: Path, tiny_tag_data: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", str(tiny_tag_bundle_dir), str(tiny_tag_data / "tiny-test.conllu")])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    manifest = json.loads((tiny_tag_bundle_dir / "manifest.json").read_text())
    assert report["accuracy"] == pytest.approx(manifest["parity"]["accuracy"])
    assert report["tokens"] == sum(
        1 for line in (tiny_tag_data / "tiny-test.conllu").read_text().splitlines() if line and not line.startswith("#")
    )
    result = runner.invoke(app, ["evaluate", str(tiny_tag_bundle_dir), str(tiny_tag_data), "--format", "table"])
    assert result.exit_code == 0 and "NOUN" in result.stdout


def test_tagger_loads_from_a_zip_through_lstm_onnx_load(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    archive = Path(shutil.make_archive(str(tmp_path / "tagger"), "zip", tiny_tag_bundle_dir))
    from_zip = lstm_onnx.load(archive, providers="cpu")
    from_dir = lstm_onnx.load(tiny_tag_bundle_dir, providers="cpu")
    assert isinstance(from_zip, TokenTagger)
    tokens = [["the", "dog", "runs"]]
    assert from_zip.tag_tokens(tokens)[0].tags == from_dir.tag_tokens(tokens)[0].tags  # type: ignore[union-attr]


def test_cli_predict_tags_from_a_zip(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "tagger"), "zip", tiny_tag_bundle_dir)
    result = CliRunner().invoke(app, ["predict", archive, "the dog runs"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["tokens"] == ["the", "dog", "runs"] and len(record["tags"]) == 3


def test_text_classifier_refuses_a_tagging_bundle(tiny_tag_bundle_dir: Path) -> None:
    with pytest.raises(BundleError, match="is a tagging bundle"):
        TextClassifier.load(tiny_tag_bundle_dir, providers="cpu")


@pytest.mark.parametrize(
    "command",
    [
        ["score", "--file", "{inp}", "--output", "{out}"],
        ["predict", "--file", "{inp}", "--engine", "local", "--workers", "2", "--output", "{out}"],
        ["serve", "--port", "1"],  # refused before Ray starts or any port is bound
    ],
    ids=["score", "predict --engine", "serve"],
)
def test_cli_classifier_only_commands_refuse_a_tagging_bundle(
    tiny_tag_bundle_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    if command[0] == "serve":
        pytest.importorskip("ray.serve")
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"text": "the dog runs"}\n', encoding="utf-8")
    args = [command[0], str(tiny_tag_bundle_dir), *(a.format(inp=inp, out=out) for a in command[1:])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "is a tagging bundle" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_predict_tagging_empty_line_is_named_by_its_line(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    # Past the first chunk of 1,024 texts, so a position within the chunk would name the wrong line.
    path = tmp_path / "texts.txt"
    path.write_text("the dog runs\n" * 1100 + "\n" + "the cat sees\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tiny_tag_bundle_dir), "--file", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: line 1101 of texts.txt: Text is empty or whitespace-only (''); every text needs at least one "
        "token. Remove it or fill it in. (--on-error skip or null carries on past such lines)"
    )
    assert len(result.stdout.splitlines()) == 1100  # every text before it was tagged


def test_tag_report_names_gold_tags_the_tagger_does_not_know() -> None:
    report = tag_report([["DET", "WEIRD", "NOUN", "WEIRD"]], [["DET", "NOUN", "NOUN", "NOUN"]], ["DET", "NOUN"])
    assert report["unknown_tags"] == {"WEIRD": 2}
    assert report["accuracy"] == 0.5 and set(report["per_label"]) == {"DET", "NOUN"}


def test_cli_predict_tagging_reads_jsonl_text_fields(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text('{"id": 7, "body": "the dog runs"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tiny_tag_bundle_dir), "--file", str(path), "--text-field", "body"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tokens"] == ["the", "dog", "runs"]  # not the JSON syntax


@pytest.mark.parametrize(("fmt", "shown"), [("jsonl", '"\\ud800"'), ("conllu", "\t\\ud800\t")])
def test_cli_predict_tagging_writes_a_lone_surrogate_escaped(
    tiny_tag_bundle_dir: Path, tmp_path: Path, fmt: str, shown: str
) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "the \\ud800 runs"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tiny_tag_bundle_dir), "--file", str(path), "--format", fmt])
    assert result.exit_code == 0, result.stderr
    assert shown in result.stdout


_MIXED_TAGGED = (
    '{"id": "a1", "text": "the dog runs"}\n'
    '{"id": "a2", "text": "   "}\n'
    "not json at all\n"
    '{"id": 5, "text": "a cat sees the tree ."}\n'
)


def test_cli_predict_tagging_on_error_fail_stops_at_the_first_bad_line(tiny_tag_bundle_dir: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(tiny_tag_bundle_dir), "--file", "-"], input=_MIXED_TAGGED)
    assert result.exit_code == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["a1"]
    assert result.stderr.startswith("error: line 2 of stdin: Text is empty or whitespace-only")
    assert "--on-error skip or null" in result.stderr


def test_cli_predict_tagging_on_error_skip_reports_and_tags_the_rest(tiny_tag_bundle_dir: Path) -> None:
    args = ["predict", str(tiny_tag_bundle_dir), "--file", "-", "--on-error", "skip"]
    result = CliRunner().invoke(app, args, input=_MIXED_TAGGED)
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == ["a1", 5]
    assert rows[1]["tokens"] == ["a", "cat", "sees", "the", "tree", "."] and len(rows[1]["tags"]) == 6
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: line 2 of stdin: Text is empty or whitespace-only")
    assert errors[1].startswith("error: line 3 of stdin: not JSON")
    assert errors[2] == (
        "error: 2 text(s) could not be scored (each reported above on stderr); the output holds the others."
    )


def test_cli_predict_tagging_on_error_null_keeps_every_line_in_order(tiny_tag_bundle_dir: Path) -> None:
    args = ["predict", str(tiny_tag_bundle_dir), "--file", "-", "--on-error", "null"]
    result = CliRunner().invoke(app, args, input=_MIXED_TAGGED)
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == ["a1", "a2", 3, 5]
    assert rows[1] == {"id": "a2", "tokens": None, "tags": None, "scores": None, "error": rows[1]["error"]}
    assert rows[1]["error"].startswith("Text is empty or whitespace-only") and rows[2]["error"].startswith("not JSON")
    assert rows[3]["tags"] == TokenTagger.load(tiny_tag_bundle_dir).tag(["a cat sees the tree ."])[0].tags
    assert "as null records" in result.stderr.splitlines()[-1]


def test_cli_predict_tagging_carries_the_id_field(tiny_tag_bundle_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text('{"key": "doc 7", "text": "the dog runs"}\n\n{"text": "a cat sees"}\n', encoding="utf-8")
    args = ["predict", str(tiny_tag_bundle_dir), "--file", str(path), "--id-field", "key"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["id"], row["tokens"]) for row in rows] == [
        ("doc 7", ["the", "dog", "runs"]),
        (3, ["a", "cat", "sees"]),
    ]
    assert list(rows[0]) == ["id", "tokens", "tags", "scores"]
    result = CliRunner().invoke(app, [*args, "--format", "conllu"])
    assert result.exit_code == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("#")] == [
        "# sent_id = doc_7",
        "# sent_id = 3",
    ]


def test_cli_predict_tagging_on_error_null_with_conllu_refused(tiny_tag_bundle_dir: Path) -> None:
    args = ["predict", str(tiny_tag_bundle_dir), "--file", "-", "--on-error", "null", "--format", "conllu"]
    result = CliRunner().invoke(app, args, input="the dog runs\n")
    assert result.exit_code == 1 and result.stdout == ""
    assert "CoNLL-U cannot hold" in result.stderr


def test_tagger_iter_results_yields_errors_in_place_with_their_positions(tagger: TokenTagger) -> None:
    texts = ["the dog runs", " ", 3, "a cat sees", ""]
    results = list(tagger.iter_results(texts, chunk_size=3))
    assert [type(r).__name__ for r in results] == [
        "TaggedSentence",
        "EmptyInputError",
        "TypeError",
        "TaggedSentence",
        "EmptyInputError",
    ]
    assert "position 1" in str(results[1]) and "position 2" in str(results[2]) and "position 4" in str(results[4])
    assert results[4].position == 4  # type: ignore[union-attr]
    assert results[3].tags == tagger.tag(["a cat sees"])[0].tags  # type: ignore[union-attr]
