"""Hostile and careless input (issue 9): each probe of the adversarial review, kept as a test."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.contract import MANIFEST_FILE, MODEL_FILE, TOKENIZER_RULES_FILE, VOCAB_FILE
from lstm_onnx.runtime.datasets import read_dataset
from lstm_onnx.runtime.errors import (
    BundleError,
    DataError,
    EmptyInputError,
    InputError,
    InputTooLongError,
    NonFiniteOutputError,
)
from lstm_onnx.runtime.predictor import TextClassifier
from lstm_onnx.runtime.tokenizer_rules import MAX_RUN_CHARS, RuleTokenizer, check_pattern_safety

runner = CliRunner()


def _relist(bundle: Path) -> None:
    """Rewrite the manifest's checksums after a test changed files (what an attacker would do)."""
    from lstm_onnx.runtime.bundle import sha256_file

    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    for name in list(manifest["files"]):
        manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))


# ------------------------------------------------------------------ 1-2: time and memory linear in length
class _CountingPattern:
    """Wraps a compiled pattern and adds up the characters each search/match/finditer call is handed: the regex
    engine's work, counted exactly, so the check below cannot be fooled (or failed) by a busy machine."""

    def __init__(self, pattern: re.Pattern[str], counter: list[int]) -> None:
        self._pattern, self._counter = pattern, counter

    def _count(self, string: str, pos: int = 0) -> None:
        self._counter[0] += len(string) - pos

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        self._count(string, pos)
        return self._pattern.search(string, pos)

    def match(self, string: str, pos: int = 0) -> re.Match[str] | None:
        self._count(string, pos)
        return self._pattern.match(string, pos)

    def finditer(self, string: str, pos: int = 0) -> Iterator[re.Match[str]]:
        self._count(string, pos)
        return self._pattern.finditer(string, pos)


def _regex_work(tokenizer: RuleTokenizer, text: str) -> int:
    counter = [0]
    engine = copy.copy(tokenizer)
    for name in ("_prefix", "_suffix", "_infix", "_token_match", "_url_match"):
        pattern = getattr(engine, name)
        if pattern is not None:
            setattr(engine, name, _CountingPattern(pattern, counter))
    engine(text)
    return counter[0]


@pytest.mark.parametrize("char", [")", "'", "$", "=", "\U0001f600", "(", ".", "a"])
def test_runs_of_affix_characters_tokenize_in_linear_work(tiny_model: TextClassifier, char: str) -> None:
    engine = tiny_model.bundle.tokenizer._engine()
    small = _regex_work(engine, char * 2_000)
    large = _regex_work(engine, char * 20_000)
    # Ten times the text: linear work is ~10x, spaCy's quadratic affix loop ~100x (it was, before the fix).
    assert small > 0 and large <= 12 * small


def test_overlong_runs_are_cut_into_pieces_and_normal_words_are_untouched(tiny_model: TextClassifier) -> None:
    engine = tiny_model.bundle.tokenizer._engine()
    assert engine("a" * (MAX_RUN_CHARS + 5)) == ["a" * MAX_RUN_CHARS, "a" * 5]
    assert engine("(don't)") == ["(", "do", "n't", ")"]


def test_truncation_stops_tokenizing_early(tiny_model: TextClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    model = TextClassifier(tiny_model.bundle, max_length=16, truncate=True, max_chars=6_000_000)
    text = " ".join(f"w{i})" for i in range(600_000))  # 5.2 MB of distinct words: none is in the chunk cache
    engine = model.bundle.tokenizer._engine()
    counter = [0]
    for name in ("_prefix", "_suffix", "_infix", "_token_match", "_url_match"):
        if getattr(engine, name) is not None:
            monkeypatch.setattr(engine, name, _CountingPattern(getattr(engine, name), counter))
    with pytest.warns(UserWarning, match="truncated"):
        (pred,) = model.predict([text])
    # 16 tokens need a few hundred characters of regex work, not the 5.6 million a full tokenization would.
    assert pred.truncated and 0 < counter[0] < 10_000


@given(st.text(max_size=60), st.integers(1, 12))
def test_early_stop_gives_the_same_tokens_as_cutting(text: str, limit: int) -> None:
    engine = _ENGINE.get("rt")
    if engine is None:
        pytest.skip("no rules")
    from lstm_onnx.runtime.tokenizer import normalize

    norm = normalize(text)
    assert engine(norm, limit) == engine(norm)[:limit]


_ENGINE: dict[str, RuleTokenizer] = {}


@pytest.fixture(autouse=True)
def _engine(tiny_model: TextClassifier) -> None:
    _ENGINE["rt"] = tiny_model.bundle.tokenizer._engine()


def test_character_limit_is_checked_before_tokenizing(tiny_model: TextClassifier) -> None:
    with pytest.raises(InputTooLongError, match="position 1 has 100001 characters; max_chars is 100000"):
        tiny_model.predict(["fine", "x" * 100_001])
    with pytest.warns(UserWarning, match="max_chars=100000 characters were truncated"):
        (pred,) = TextClassifier(tiny_model.bundle, truncate=True).predict(["great " * 30_000])
    assert pred.truncated


# ------------------------------------------------------------------ 4: silent wrong answers
def test_one_shot_iterators_are_read_once(tiny_model: TextClassifier) -> None:
    texts = ["great movie", "awful film"]
    assert [p.label for p in tiny_model.predict(map(str, texts))] == [p.label for p in tiny_model.predict(texts)]
    assert tiny_model.predict_proba(iter(texts)).shape == (2, 2)


def test_non_finite_logits_are_an_error_naming_the_text(tiny_model: TextClassifier) -> None:
    class Broken:
        provider = "CPUExecutionProvider"

        def run(self, ids: Any, lengths: Any) -> Any:
            out = np.zeros((len(lengths), 2), np.float32)
            out[-1, 0] = np.nan
            return out

    model = TextClassifier(tiny_model.bundle)
    model._session = Broken()  # type: ignore[assignment]
    with pytest.raises(NonFiniteOutputError, match=r"position\(s\) \[1\]"):
        model.predict(["good", "bad bad"])
    results = list(model.iter_results(["good", "bad bad"]))
    assert not isinstance(results[0], Exception) and isinstance(results[1], NonFiniteOutputError)


def test_bom_is_not_part_of_the_first_text(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    plain, bom = tmp_path / "a.txt", tmp_path / "b.txt"
    plain.write_text("great movie\n", encoding="utf-8")
    bom.write_text("great movie\n", encoding="utf-8-sig")
    out = [runner.invoke(app, ["predict", str(tiny_bundle_dir), "--file", str(p)]) for p in (plain, bom)]
    assert out[0].exit_code == out[1].exit_code == 0
    assert json.loads(out[0].stdout)["score"] == json.loads(out[1].stdout)["score"]
    assert json.loads(out[1].stdout)["text"] == "great movie"
    piped = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--file", "-"], input="\ufeffgreat movie\n")
    assert json.loads(piped.stdout)["text"] == "great movie"


@pytest.mark.parametrize("value", ["null", "5", "[1]", "true", '{"a": 1}'])
def test_jsonl_non_string_text_is_a_data_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": "pos"}\n{"text": ' + value + ', "label": "neg"}\n')
    with pytest.raises(DataError, match="line 2: 'text' must be a string"):
        read_dataset(path)


def test_jsonl_nested_deep_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match="line 1: not valid JSON"):
        read_dataset(path)


def test_empty_text_is_one_rule_in_training(tiny_run_dir: Path) -> None:
    from lstm_onnx.trainer.data import encode
    from lstm_onnx.trainer.run_dir import load_run

    run = load_run(tiny_run_dir)
    with pytest.raises(EmptyInputError, match="position 1 of train"):
        encode([["great"], []], ["pos", "neg"], run.vocab, run.labels, "train")


# ------------------------------------------------------------------ 5: hostile bundles
def test_catastrophic_regex_is_refused_before_compiling(bundle_copy: Path) -> None:
    rules = json.loads((bundle_copy / TOKENIZER_RULES_FILE).read_text())
    rules["suffix_search"] = {"pattern": "(a+)+$", "flags": 32}
    (bundle_copy / TOKENIZER_RULES_FILE).write_text(json.dumps(rules))
    _relist(bundle_copy)
    with pytest.raises(BundleError, match="nests unbounded repeats"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("pattern", ["(x|xy)*z", r"(a)\1"])
def test_pattern_guard_refuses_alternation_repeats_and_backreferences(pattern: str) -> None:
    with pytest.raises(ValueError, match="Rules entry"):
        check_pattern_safety(pattern, 0, "k")


# Each of these passed the first guard and took from 13 s (the 8-repeat chain, 61 characters) to forever.
@pytest.mark.parametrize(
    ("pattern", "shape"),
    [
        (r"(.*a){25}$", "nests unbounded repeats"),
        (r"(a{1,99}){1,99}$", "nests variable repeats"),
        (r"\w*\w*\w*\w*\w*\w*\w*\w*x$", "more than one unbounded repeat in a row"),
        (r"(?=\w*\w*x)a$", "more than one unbounded repeat in a row"),
        (r"(?>(a+)+)$", "nests unbounded repeats"),
        (r"(a+)*+$", "nests unbounded repeats"),
    ],
)
def test_pattern_guard_refuses_polynomial_and_hidden_shapes(pattern: str, shape: str) -> None:
    with pytest.raises(ValueError, match=shape):
        check_pattern_safety(pattern, 0, "suffix_search")


@pytest.mark.parametrize(("key", "pattern"), [("prefix_search", r"a*b|^c"), ("suffix_search", r"a+|b$")])
def test_affix_patterns_must_be_anchored(key: str, pattern: str) -> None:
    with pytest.raises(ValueError, match="on every branch"):
        check_pattern_safety(pattern, 0, key)


def test_spacys_own_patterns_pass_the_guard_or_are_known(tiny_bundle_dir: Path) -> None:
    from lstm_onnx.runtime.tokenizer_rules import KNOWN_ENTRY_DIGESTS, entry_digest, load_rules

    rules = load_rules(tiny_bundle_dir / TOKENIZER_RULES_FILE)
    for key in ("prefix_search", "suffix_search", "infix_finditer"):
        check_pattern_safety(rules[key]["pattern"], rules[key]["flags"], key)
    assert entry_digest(rules["url_match"]) in KNOWN_ENTRY_DIGESTS
    rules["token_match"] = {"pattern": r"^\d+x$", "flags": 32}  # a set no export wrote, built from safe entries
    assert RuleTokenizer(rules)("see http://x.com/a 12x") == ["see", "http://x.com/a", "12x"]


def test_unlisted_file_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(BundleError, match="weights.bin is not listed"):
        load_bundle(bundle_copy)


def test_symlink_inside_bundle_is_refused(bundle_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    shutil.copyfile(bundle_copy / VOCAB_FILE, outside)
    (bundle_copy / VOCAB_FILE).unlink()
    (bundle_copy / VOCAB_FILE).symlink_to(outside)
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle_copy)


def test_vocabulary_longer_than_embedding_table_is_refused(bundle_copy: Path) -> None:
    with open(bundle_copy / VOCAB_FILE, "a", encoding="utf-8") as fh:
        fh.write("extra1\nextra2\n")
    config = json.loads((bundle_copy / "config.json").read_text())
    n = len((bundle_copy / VOCAB_FILE).read_text().splitlines())
    config["vocab_size"] = config["model"]["vocab_size"] = n
    (bundle_copy / "config.json").write_text(json.dumps(config))
    _relist(bundle_copy)
    with pytest.raises(BundleError, match=f"has {n} tokens but the embedding table .* has {n - 2} rows"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("content", ['{"format_version": ' + "9" * 5000 + "}", "[" * 100_000])
def test_absurd_manifest_is_a_bundle_error(bundle_copy: Path, content: str) -> None:
    (bundle_copy / MANIFEST_FILE).write_text(content)
    result = runner.invoke(app, ["info", str(bundle_copy)])
    assert result.exit_code == 1 and "not a readable JSON file" in result.stderr


def test_corrupt_model_file_fails_its_checksum(bundle_copy: Path) -> None:
    (bundle_copy / MODEL_FILE).write_bytes(b"not onnx")
    result = runner.invoke(app, ["predict", str(bundle_copy), "hi"])
    assert result.exit_code == 1 and "Checksum mismatch for model.onnx" in result.stderr


# ------------------------------------------------------------------ 3, 7: --force and leftovers
def test_force_refuses_a_directory_that_is_not_a_bundle(tiny_run_dir: Path, tmp_path: Path) -> None:
    from lstm_onnx.exporter.build import export_bundles
    from lstm_onnx.exporter.config import ExportConfig

    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"jpg")
    with pytest.raises(BundleError, match="not a bundle"):
        export_bundles(ExportConfig(run_dir=tiny_run_dir, out=out, force=True))
    assert (out / "holiday.jpg").read_bytes() == b"jpg"
    with pytest.raises(BundleError, match="run directory"):
        export_bundles(ExportConfig(run_dir=tiny_run_dir, out=tiny_run_dir, force=True))
    assert (tiny_run_dir / VOCAB_FILE).is_file()


def test_crash_between_renames_is_recovered_and_leftovers_swept(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    import os

    from lstm_onnx.exporter.bundle_writer import recover_target

    out = tmp_path / "bundle"
    aside = tmp_path / ".bundle.x1abc_9z.old"
    aside.mkdir()
    shutil.copytree(tiny_bundle_dir, aside / "bundle")
    work, staging = tmp_path / ".bundle.work.ab12cd34", tmp_path / ".bundle.q8w7e6r5.tmp"
    for leftover in (aside, work, staging):
        leftover.mkdir(exist_ok=True)
        os.utime(leftover, (0, 0))
    recover_target(out)
    assert (out / MANIFEST_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.parametrize("name", [".bundle.cache", ".bundle.work", ".bundle.backup.old", ".bundle.work.mine-2024"])
def test_sweep_leaves_folders_it_did_not_make(tmp_path: Path, name: str) -> None:
    import os

    from lstm_onnx.exporter.bundle_writer import recover_target

    mine = tmp_path / name
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    os.utime(mine, (0, 0))
    recover_target(tmp_path / "bundle")
    assert (mine / "notes.txt").read_text() == "keep"


def test_out_inside_a_bundle_is_refused(tiny_run_dir: Path, bundle_copy: Path) -> None:
    from lstm_onnx.exporter.build import export_bundles
    from lstm_onnx.exporter.config import ExportConfig

    with pytest.raises(BundleError, match="sits inside the bundle"):
        export_bundles(ExportConfig(run_dir=tiny_run_dir, out=bundle_copy / "nested" / "b", force=True))
    assert load_bundle(bundle_copy).path == bundle_copy


def test_tagging_export_never_writes_into_its_run(tiny_tag_run_dir: Path, tmp_path: Path) -> None:
    from lstm_onnx.exporter.config import ExportConfig
    from lstm_onnx.exporter.tagger_bundle import export_tagger_bundles

    run = Path(shutil.copytree(tiny_tag_run_dir, tmp_path / "run"))
    before = sorted(p.name for p in run.iterdir())
    for out in (run, run / "bundle"):
        with pytest.raises(BundleError, match="run directory"):
            export_tagger_bundles(ExportConfig(run_dir=run, out=out, force=True))
    assert sorted(p.name for p in run.iterdir()) == before


# ------------------------------------------------------------------ 6: one line and exit 1
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1.0"], "semver"),
        (["--out", "/proc/forbidden/bundle"], "Cannot create"),
    ],
)
def test_export_bad_options_are_one_line(tiny_run_dir: Path, args: list[str], message: str) -> None:
    opts = args if "--out" in args else [*args, "--out", "unused-bundle"]
    result = runner.invoke(app, ["export", str(tiny_run_dir), *opts])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_absurd_hidden_size_is_a_config_error() -> None:
    from lstm_onnx.runtime.errors import ConfigError
    from lstm_onnx.trainer.config import ModelConfig

    with pytest.raises(ConfigError, match="hidden_size must be an int in 1..4096"):
        ModelConfig(vocab_size=10, num_labels=2, hidden_size=10**12)


def test_predict_and_evaluate_truncate_work_without_a_token_limit(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--truncate", "great movie"])
    assert result.exit_code == 0, result.stderr
    data = tmp_path / "d.jsonl"
    data.write_text('{"review": "great movie", "y": "pos"}\n{"review": "awful", "y": "neg"}\n')
    result = runner.invoke(
        app,
        ["evaluate", str(tiny_bundle_dir), str(data), "--truncate", "--max-length", "3"]
        + ["--text-field", "review", "--label-field", "y"],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 2


# ------------------------------------------------------------------ 7: output hygiene
def test_csv_neutralises_formulas_and_table_strips_escapes(tiny_bundle_dir: Path) -> None:
    result = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--format", "csv", "=HYPERLINK(1)", "+great"])
    rows = result.stdout.splitlines()[1:]
    assert rows[0].startswith("'=HYPERLINK(1)") and rows[1].startswith("'+great")
    result = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--format", "table", "great \x1b[31mred"])
    assert result.exit_code == 0 and "\x1b[31m" not in result.stdout


# ------------------------------------------------------------------ fuzz of the library entry points
@given(st.lists(st.one_of(st.text(max_size=40), st.none(), st.integers()), max_size=6))
def test_predict_fuzz_gives_predictions_or_a_toolkit_error(texts: list[Any]) -> None:
    model = _MODEL["m"]
    try:
        preds = model.predict(texts)
    except (InputError, TypeError):
        return
    assert len(preds) == len(texts)
    for pred in preds:
        assert np.isfinite(pred.score) and pred.label in model.labels


_MODEL: dict[str, TextClassifier] = {}


@pytest.fixture(autouse=True)
def _model(tiny_model: TextClassifier) -> None:
    _MODEL["m"] = tiny_model


@pytest.mark.slow
@pytest.mark.parametrize("megabytes", [1, 5])
def test_huge_text_costs_bounded_time_and_memory(tiny_bundle_dir: Path, megabytes: int) -> None:
    import subprocess
    import sys

    code = (
        "import resource, time, sys\n"
        "from lstm_onnx.runtime.predictor import TextClassifier\n"
        f"m = TextClassifier.load({str(tiny_bundle_dir)!r}, providers='cpu', max_chars={megabytes} * 10**6)\n"
        f"t = ('great ))))) movie $$$ ' * 10**6)[: {megabytes} * 10**6]\n"
        "s = time.perf_counter(); m.predict([t]); d = time.perf_counter() - s\n"
        "print(d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    seconds, peak_mb = map(float, subprocess.check_output([sys.executable, "-c", code], text=True).split())
    assert seconds < 10 * megabytes and peak_mb < 1500


# ------------------------------------------------------------------ every path parses JSON the same way
_HOSTILE_JSON = ["[" * 100_000 + "]" * 100_000, '{"text": "hi", "id": ' + "9" * 5000 + "}"]


@pytest.mark.parametrize("body", _HOSTILE_JSON)
def test_serve_answers_400_to_hostile_json(body: str) -> None:
    import asyncio

    from lstm_onnx.runtime.serve_api import ServeSettings, answer_predict

    async def never(text: str) -> Any:
        raise AssertionError("no text should reach the model")

    status, answer = asyncio.run(answer_predict(body.encode(), never, ServeSettings(bundle="b")))
    assert status == 400 and "Body is not JSON" in answer["error"]


def test_serve_answer_with_a_lone_surrogate_encodes() -> None:
    from lstm_onnx.runtime.serve_api import encode_answer

    answer = {"predictions": [{"text": "\ud800 ok"}]}
    assert json.loads(encode_answer(answer)) == answer


@pytest.mark.parametrize("line", _HOSTILE_JSON)
def test_score_and_tagging_data_refuse_hostile_json_lines(tmp_path: Path, line: str) -> None:
    from lstm_onnx.runtime.batch_inputs import read_chunks
    from lstm_onnx.runtime.tagging_data import read_tagged

    path = tmp_path / "d.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DataError, match="not JSON"):
        list(read_chunks(path, 8))
    with pytest.raises(DataError, match="not valid JSON"):
        read_tagged(path)


def test_score_keeps_ids_of_a_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    from lstm_onnx.runtime.batch_inputs import read_chunks

    path = tmp_path / "d.csv"
    path.write_text("id,text\nA7,great movie\nB9,awful\n", encoding="utf-8-sig")
    assert list(read_chunks(path, 8)) == [(["A7", "B9"], ["great movie", "awful"])]
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "x1", "text": "great"}\n', encoding="utf-8-sig")
    assert list(read_chunks(path, 8)) == [(["x1"], ["great"])]


def test_score_csv_field_over_the_csv_limit_is_a_data_error(tmp_path: Path) -> None:
    from lstm_onnx.runtime.batch_inputs import read_chunks

    path = tmp_path / "d.csv"
    path.write_text("text\n" + "great " * 30_000 + "\n")
    with pytest.raises(DataError, match=r"line 2: not readable CSV \(field larger than field limit"):
        list(read_chunks(path, 8))


def test_score_takes_max_chars(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    source, out = tmp_path / "d.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"text": "great " * 20_000}) + "\n")
    args = ["score", str(tiny_bundle_dir), "--file", str(source), "--output", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "max_chars is 100000" in refused.stderr and not out.exists()
    result = runner.invoke(app, [*args, "--max-chars", "200000"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())["label"] in ("neg", "pos")


# ------------------------------------------------------------------ the tagging path follows the same rules
def test_tagger_checks_the_character_limit_before_tokenizing(tiny_tag_bundle_dir: Path) -> None:
    from lstm_onnx.runtime.load import load
    from lstm_onnx.runtime.tagger import TokenTagger

    tagger = load(tiny_tag_bundle_dir, providers="cpu")
    assert isinstance(tagger, TokenTagger) and tagger.max_chars == 100_000
    with pytest.raises(InputTooLongError, match="position 1 has 100002 characters; max_chars is 100000"):
        tagger.tag(["the cat", "a " * 50_001])
    cut = load(tiny_tag_bundle_dir, providers="cpu", truncate=True, max_chars=10)
    assert isinstance(cut, TokenTagger)
    with pytest.warns(UserWarning, match="cut to max_chars=10"):
        (sentence,) = cut.tag(["the big dog sees a cat"])
    assert sentence.tokens == ["the", "big", "do"]


def test_tagger_empty_text_is_the_one_rule(tiny_tag_bundle_dir: Path, tiny_bundle_dir: Path) -> None:
    expected = "ext is empty or whitespace-only ('<br />'); every text needs at least one token."
    for bundle in (tiny_tag_bundle_dir, tiny_bundle_dir):  # tagger and classifier apply the same rule
        result = runner.invoke(app, ["predict", str(bundle), "the cat", "<br />"])
        assert result.exit_code == 1
        assert result.stderr.startswith("error: argument 2: ") and expected in result.stderr


# ------------------------------------------------------------------ one line never costs more than max_chars allows
@pytest.mark.parametrize(("fmt", "truncate"), [("text", False), ("text", True), ("jsonl", False)])
def test_an_overlong_line_is_never_held_whole(tmp_path: Path, fmt: str, truncate: bool) -> None:
    import tracemalloc

    from lstm_onnx.runtime.line_inputs import read_items

    path = tmp_path / f"d.{'jsonl' if fmt == 'jsonl' else 'txt'}"
    first = "great " * 1_000_000 if fmt == "text" else json.dumps({"text": "great " * 1_000_000})
    second = "awful film" if fmt == "text" else json.dumps({"text": "awful film"})
    path.write_text(f"{first}\r\n{second}\r\n")
    tracemalloc.start()
    try:
        items = list(read_items(str(path), fmt, max_chars=1_000, truncate=truncate))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_500_000  # the 6 MB line read whole would be more than 6 MB
    assert [item.id for item in items] == [1, 2] and items[1].text == "awful film"
    if truncate:
        assert items[0].text == first[:1_001] and items[0].error is None
    else:
        assert items[0].text is None and "max_chars" in (items[0].error or "")


def test_predict_reads_a_named_pipe_and_names_a_directory(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "texts"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("great movie\n"))
    writer.start()
    result = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--file", str(fifo)])
    writer.join()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "great movie"
    result = runner.invoke(app, ["predict", str(tiny_bundle_dir), "--file", str(tmp_path)])
    assert result.exit_code == 1 and "is a directory" in result.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [(MANIFEST_FILE, "larger than 16,777,216 bytes"), (TOKENIZER_RULES_FILE, "larger than"), (VOCAB_FILE, "larger")],
)
def test_oversized_bundle_files_are_refused_before_reading(bundle_copy: Path, name: str, message: str) -> None:
    from lstm_onnx.runtime.json_text import MAX_JSON_FILE_BYTES, MAX_VOCAB_FILE_BYTES

    size = (MAX_VOCAB_FILE_BYTES if name == VOCAB_FILE else MAX_JSON_FILE_BYTES) + 1
    with open(bundle_copy / name, "ab") as fh:
        fh.truncate(size)  # sparse: no disk or memory spent writing it
    if name != MANIFEST_FILE:
        _relist(bundle_copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_tagger_non_finite_logits_are_an_error(tiny_tag_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lstm_onnx.runtime.tagger import TokenTagger

    tagger = TokenTagger.load(tiny_tag_bundle_dir, providers="cpu")
    real = tagger.logits

    def broken(sentences: Any) -> Any:
        out = np.array(real(sentences), dtype=np.float32)
        out[-1, 0, 0] = np.nan
        return out

    monkeypatch.setattr(tagger, "logits", broken)
    with pytest.raises(NonFiniteOutputError, match=r"position\(s\) \[1\]"):
        tagger.tag_tokens([["the", "cat"], ["a", "big", "dog"]])


@pytest.mark.parametrize("suffix", [".conllu", ".jsonl", ".tsv"])
def test_tagged_data_with_a_byte_order_mark_reads_as_without(tmp_path: Path, suffix: str) -> None:
    from lstm_onnx.runtime.tagging_data import read_tagged

    body = {
        ".conllu": "# sent_id = 1\n1\tThe\t_\tDET\t_\t_\t_\t_\t_\t_\n2\tcat\t_\tNOUN\t_\t_\t_\t_\t_\t_\n\n",
        ".jsonl": '{"tokens": ["The", "cat"], "tags": ["DET", "NOUN"]}\n',
        ".tsv": "The\tDET\ncat\tNOUN\n\n",
    }[suffix]
    plain, bom = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    plain.write_text(body, encoding="utf-8")
    bom.write_text(body, encoding="utf-8-sig")
    assert read_tagged(bom).tokens == read_tagged(plain).tokens == [["The", "cat"]]


def test_training_names_an_empty_text_by_its_place_in_the_file(tmp_path: Path) -> None:
    from lstm_onnx.trainer.presets import get_preset
    from lstm_onnx.trainer.train import train
    from tests.conftest import corpus_texts, make_corpus

    rows = [*make_corpus(20), ("  <br />  ", "pos"), *make_corpus(20, seed=3)]
    preset = get_preset("tiny", seed=0)
    with pytest.raises(EmptyInputError, match="position 20 of corpus is empty"):
        train(corpus_texts(rows), tmp_path / "run", preset.model, preset.train)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["io", "task"], {}),
        (["io", "inputs"], None),
        (["io", "outputs"], -1),
        (["io", "inputs"], ["x"]),
        (["parity", "backends"], "x"),
        (["metrics"], [1]),
    ],
)
def test_manifest_with_a_wrong_nested_type_is_one_line(bundle_copy: Path, path: list[str], value: Any) -> None:
    manifest = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    for command in (["info"], ["predict", "--truncate"]):
        result = runner.invoke(
            app, [command[0], str(bundle_copy), *command[1:], *(["hi"] if command[0] == "predict" else [])]
        )
        assert result.exit_code == 1 and "has the wrong type" in result.stderr, result.stderr


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="renameat2 is Linux's")
def test_force_swaps_the_bundle_in_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lstm_onnx.runtime.atomic import replace_directory

    target, staging = tmp_path / "bundle", tmp_path / ".bundle.abcd1234.tmp"
    for folder, name in ((target, "old"), (staging, "new")):
        folder.mkdir()
        (folder / name).write_text(name)

    def no_rename(self: Path, other: Any) -> Any:  # a two-step move would leave no bundle in between
        raise AssertionError(f"{self} renamed while {target} is being replaced")

    monkeypatch.setattr(Path, "rename", no_rename)
    replace_directory(staging, target)
    assert [p.name for p in target.iterdir()] == ["new"] and [p.name for p in tmp_path.iterdir()] == ["bundle"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": None}, None),  # the manifest's io.task still says tag: it is served as a tagger
        ({"model.max_word_chars": "x"}, "max_word_chars must be an int in 2..256"),
        ({"model.max_word_chars": 10**6}, "max_word_chars must be an int in 2..256"),
        ({"model.max_word_chars": 0}, "max_word_chars must be an int in 2..256"),
    ],
)
def test_tagging_config_with_wrong_values(
    tiny_tag_bundle_dir: Path, tmp_path: Path, change: dict[str, Any], message: str | None
) -> None:
    from lstm_onnx.runtime.load import load
    from lstm_onnx.runtime.tagger import TokenTagger

    bundle = Path(shutil.copytree(tiny_tag_bundle_dir, tmp_path / "b"))
    config = json.loads((bundle / "config.json").read_text())
    for key, value in change.items():
        *parents, last = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[last] = value
    (bundle / "config.json").write_text(json.dumps(config))
    _relist(bundle)
    if message is None:
        tagger = load(bundle, providers="cpu")
        assert isinstance(tagger, TokenTagger) and tagger.tag(["the cat"])[0].tokens == ["the", "cat"]
    else:
        with pytest.raises(BundleError, match=message):
            load(bundle, providers="cpu")
