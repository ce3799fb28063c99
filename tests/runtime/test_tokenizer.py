from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_onnx.runtime.errors import BundleError, EmptyInputError
from lstm_onnx.runtime.tokenizer import PAD_ID, UNK_ID, Tokenizer, TokenizerConfig, Vocab, batch_encode, normalize


def test_normalize_removes_imdb_line_breaks_and_collapses_whitespace() -> None:
    assert normalize("Good.<br /><br />Very\tgood \u00a0 film\n") == "Good. Very good film"


def test_tokenizer_splits_like_spacy_and_lowercases() -> None:
    assert Tokenizer().tokenize("I didn't LIKE it!<br />") == ["i", "did", "n't", "like", "it", "!"]


def test_tokenizer_keeps_case_when_asked() -> None:
    assert Tokenizer(TokenizerConfig(lowercase=False)).tokenize("Great Film") == ["Great", "Film"]


def test_tokenizer_pipe_matches_tokenize(corpus: list[tuple[str, str]]) -> None:
    tok = Tokenizer()
    texts = [t for t, _ in corpus]
    assert list(tok.pipe(texts)) == [tok.tokenize(t) for t in texts]


@pytest.fixture(scope="module")
def shared_tokenizer() -> Tokenizer:
    return Tokenizer()


@given(st.text(max_size=200))
def test_tokenizer_accepts_any_text_deterministically(shared_tokenizer: Tokenizer, text: str) -> None:
    tok = shared_tokenizer
    tokens = tok.tokenize(text)
    assert tokens == tok.tokenize(text)
    assert all(tok_ and not any(c.isspace() for c in tok_) for tok_ in tokens)


def test_vocab_build_orders_by_frequency_and_applies_limits() -> None:
    vocab = Vocab.build([["b", "a", "b"], ["c", "b", "a"], ["d"]], min_freq=2)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"]
    assert Vocab.build([["b", "a", "b", "c"]], max_size=3).itos == ["<pad>", "<unk>", "b"]


def test_vocab_encode_maps_unknown_tokens_to_unk() -> None:
    vocab = Vocab.build([["good", "film"]])
    assert vocab.encode(["good", "zebra"]) == [vocab.stoi["good"], UNK_ID]


@given(st.lists(st.text(min_size=1).filter(lambda s: not any(c.isspace() for c in s)), max_size=30))
def test_vocab_save_load_round_trip(tokens: list[str]) -> None:
    import tempfile

    vocab = Vocab.build([tokens])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        vocab.save(path)
        loaded = Vocab.load(path)
    assert loaded == vocab
    in_vocab = [t for t in tokens if t in vocab.stoi]
    assert loaded.decode(loaded.encode(in_vocab)) == in_vocab


def test_vocab_load_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\ngood", encoding="utf-8")
    with pytest.raises(BundleError, match="truncated"):
        Vocab.load(path)


def test_vocab_load_rejects_missing_specials(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("good\nbad\n", encoding="utf-8")
    with pytest.raises(BundleError, match="must start with"):
        Vocab.load(path)


def test_batch_encode_right_pads_and_returns_lengths() -> None:
    ids, lengths = batch_encode([[5, 6, 7], [8]])
    assert ids.dtype == np.int64 and lengths.dtype == np.int64
    assert ids.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [3, 1]


def test_batch_encode_rejects_empty_sequence_naming_position() -> None:
    with pytest.raises(EmptyInputError, match="position 1"):
        batch_encode([[5], []])
