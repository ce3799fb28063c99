"""CoNLL-U and the other tagged-data readers: syntactic words, multiword ranges, empty nodes, errors, .gz, splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from lstm_onnx.runtime.conllu import format_conllu, read_conllu
from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tagging_data import read_tagged

SAMPLE = """# sent_id = s1
# text = I don't know.
1-2\tI'd\t_\t_\t_\t_\t_\t_\t_\t_
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
3\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t3:conj\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_

"""


def _write(tmp_path: Path, text: str, name: str = "x.conllu") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_conllu_keeps_syntactic_words_only(tmp_path: Path) -> None:
    sentences = list(read_conllu(_write(tmp_path, SAMPLE)))
    assert [s.words for s in sentences] == [["I", "do", "know", "."], ["Hi"]]
    assert sentences[0].tags == ["PRON", "AUX", "VERB", "PUNCT"]
    assert sentences[0].sent_id == "s1"


def test_read_conllu_xpos(tmp_path: Path) -> None:
    assert next(read_conllu(_write(tmp_path, SAMPLE), tagset="xpos")).tags == ["PRP", "VBP", "VB", "."]


def test_read_conllu_gz(tmp_path: Path) -> None:
    path = tmp_path / "x.conllu.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(SAMPLE)
    assert len(list(read_conllu(path))) == 2


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        ("1\tonly\tthree", "expected 10 tab-separated columns"),
        ("x\tw\tw\tNOUN\t_\t_\t_\t_\t_\t_", "bad word ID"),
        ("2\tw\tw\tNOUN\t_\t_\t_\t_\t_\t_", "out of order"),
        ("1-a\tw\t_\t_\t_\t_\t_\t_\t_\t_", "bad word ID"),
        ("\u00b2\tw\tw\tNOUN\t_\t_\t_\t_\t_\t_", "bad word ID"),  # a digit to isdigit, not to int()
        ("1-\u00b2\tw\t_\t_\t_\t_\t_\t_\t_\t_", "bad word ID"),
        ("1\tw\tw\t\t_\t_\t_\t_\t_\t_", "empty FORM or tag"),
    ],
)
def test_read_conllu_malformed_line_names_file_and_line(tmp_path: Path, line: str, phrase: str) -> None:
    path = _write(tmp_path, f"# sent_id = a\n{line}\n\n")
    with pytest.raises(DataError, match=phrase) as err:
        list(read_conllu(path))
    assert f"{path}, line 2" in str(err.value)


def test_read_conllu_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        list(read_conllu(tmp_path / "nope.conllu"))


def _corrupt_gzip(kind: str) -> bytes:
    """A gzip file that is not gzip, cut off, or whose deflate stream is damaged past its header."""
    data = gzip.compress(("1\tw\tw\tNOUN\t_\t_\t_\t_\t_\t_\n\n" * 2000).encode())
    if kind == "not gzip":
        return b"not gzip at all"
    if kind == "cut off":
        return data[: len(data) // 2]
    return data[:20] + bytes(b ^ 0x5A for b in data[20:200]) + data[200:]


@pytest.mark.parametrize("kind", ["not gzip", "cut off", "damaged stream"])
def test_read_conllu_corrupt_gzip(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.conllu.gz"
    path.write_bytes(_corrupt_gzip(kind))
    with pytest.raises(DataError, match="not readable"):
        list(read_conllu(path))


@pytest.mark.parametrize("name", ["bad.tsv.gz", "bad.jsonl.gz"])
def test_read_tagged_corrupt_gzip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_corrupt_gzip("damaged stream"))
    with pytest.raises(DataError, match="not readable"):
        read_tagged(path)


def test_format_conllu_round_trips(tmp_path: Path) -> None:
    text = format_conllu(["A", "cat"], ["DET", "NOUN"], sent_id="7")
    sentence = next(read_conllu(_write(tmp_path, text)))
    assert (sentence.words, sentence.tags, sentence.sent_id) == (["A", "cat"], ["DET", "NOUN"], "7")


def test_read_tagged_word_tag_and_jsonl(tmp_path: Path) -> None:
    tsv = _write(tmp_path, "A\tDET\ncat\tNOUN\n\nHi\tINTJ\n", "x.tsv")
    jsonl = _write(
        tmp_path,
        '{"tokens": ["A", "cat"], "tags": ["DET", "NOUN"]}\n\n{"tokens": ["Hi"], "tags": ["INTJ"]}\n',
        "x.jsonl",
    )
    for path in (tsv, jsonl):
        data = read_tagged(path)
        assert data.tokens == [["A", "cat"], ["Hi"]] and data.tags == [["DET", "NOUN"], ["INTJ"]]


@pytest.mark.parametrize(
    ("name", "text", "phrase"),
    [
        ("x.tsv", "A\tDET\ncat\n", "line 2: expected 'word<TAB>tag'"),
        ("x.jsonl", '{"tokens": ["A"], "tags": []}\n', "line 1: expected"),
        ("x.jsonl", "{not json\n", "line 1: not valid JSON"),
        ("x.jsonl", "[" * 5000 + "\n", "line 1: not valid JSON"),
        ("x.jsonl", '{"tokens": [' + "1" * 5000 + '], "tags": ["X"]}\n', "line 1: not valid JSON"),
        ("x.csv", "a,b\n", "unknown tagged-data format"),
        ("x.conllu", "# only a comment\n", "holds no sentences"),
    ],
)
def test_read_tagged_errors(tmp_path: Path, name: str, text: str, phrase: str) -> None:
    with pytest.raises(DataError, match=phrase):
        read_tagged(_write(tmp_path, text, name))


def test_read_tagged_folder_splits(tiny_tag_data: Path) -> None:
    assert len(read_tagged(tiny_tag_data, "dev")) == 12
    with pytest.raises(DataError, match="say which split"):
        read_tagged(tiny_tag_data)


def test_read_tagged_folder_without_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no test file"):
        read_tagged(tmp_path, "test")


_UD_EWT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ud-ewt"


@pytest.mark.parametrize(("split", "sentences"), [("train", 12_544), ("dev", 2_001), ("test", 2_077)])
def test_read_tagged_real_ud_ewt_splits(split: str, sentences: int) -> None:
    """The real treebank (skipped where ../shared is absent): every sentence read, UPOS tags, syntactic words only."""
    if not _UD_EWT.is_dir():
        pytest.skip(f"UD English EWT not found at {_UD_EWT}")
    data = read_tagged(_UD_EWT, split)
    assert len(data.tokens) == sentences
    tags = {tag for sentence in data.tags for tag in sentence}
    assert tags <= {
        "ADJ",
        "ADP",
        "ADV",
        "AUX",
        "CCONJ",
        "DET",
        "INTJ",
        "NOUN",
        "NUM",
        "PART",
        "PRON",
        "PROPN",
        "PUNCT",
        "SCONJ",
        "SYM",
        "VERB",
        "X",
    }
    # "don't" is one multiword token over the syntactic words "do" + "n't": the words are read, never the range.
    words = [t for sentence in data.tokens for t in sentence]
    assert "n't" in words and "don't" not in (w.lower() for w in words)
    if split == "test":  # the figure UD evaluation reports for EWT test: 25,094 syntactic words
        assert len(words) == 25_094 and len(tags) == 17
