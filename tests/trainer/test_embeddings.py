"""trainer.embeddings: GloVe and word2vec text files, plain or gzip, and their coverage."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from lstm_onnx.runtime.errors import DataError
from lstm_onnx.runtime.tokenizer import Vocab
from lstm_onnx.trainer.embeddings import read_vectors
from tests.conftest import GLOVE_FILE

_VOCAB = Vocab(["<pad>", "<unk>", "good", "bad", "plot"])
_LINES = ["good 0.5 1.0 -1.0", "bad -0.5 -1.0 1.0", "unrelated 9 9 9"]


@pytest.mark.parametrize(("name", "header"), [("v.txt", ""), ("v.txt.gz", ""), ("w2v.txt.gz", "3 3\n")])
def test_read_vectors_glove_and_word2vec(tmp_path: Path, name: str, header: str) -> None:
    path = tmp_path / name
    content = header + "\n".join(_LINES) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(content.encode("utf-8")))
    else:
        path.write_text(content, encoding="utf-8")
    coverage = read_vectors(path, _VOCAB, seed=0)
    assert (coverage.dim, coverage.found, coverage.total) == (3, 2, 3)
    assert coverage.fraction == pytest.approx(2 / 3)
    assert coverage.matrix.shape == (5, 3) and coverage.matrix.dtype == np.float32
    np.testing.assert_array_equal(coverage.matrix[2], [0.5, 1.0, -1.0])
    np.testing.assert_array_equal(coverage.matrix[0], [0.0, 0.0, 0.0])


def test_read_vectors_inconsistent_width_names_line(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("good 1 2 3\nbad 1 2\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: 2 values, expected 3"):
        read_vectors(path, _VOCAB, seed=0)


def test_read_vectors_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist; check --embeddings"):
        read_vectors(tmp_path / "nope.txt", _VOCAB, seed=0)


@pytest.mark.skipif(not GLOVE_FILE.is_file(), reason="shared GloVe file not available")
def test_read_vectors_real_glove_file_covers_common_words() -> None:
    vocab = Vocab(["<pad>", "<unk>", "movie", "film", "great", "awful", "zzqxj"])
    coverage = read_vectors(GLOVE_FILE, vocab, seed=0)
    assert (coverage.dim, coverage.found, coverage.total) == (50, 4, 5)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e39", "-4e38"])
def test_read_vectors_refuses_non_finite_vector(tmp_path: Path, value: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(f"good 0.5 1.0 -1.0\nbad 0.1 {value} 0.2\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 2: the vector of 'bad' holds '{value}', not a finite float32"):
        read_vectors(path, _VOCAB, seed=0)


def test_read_vectors_ignores_non_finite_rows_of_other_words(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("good 0.5 1.0 -1.0\nunrelated nan inf 1e39\n", encoding="utf-8")
    assert np.isfinite(read_vectors(path, _VOCAB, seed=0).matrix).all()


def test_read_vectors_large_finite_values_draw_finite_rows(tmp_path: Path) -> None:
    # float32 squares of 1e20 overflow: the std of the found vectors must not become inf.
    path = tmp_path / "v.txt"
    path.write_text("good 1e20 -1e20 1e20\nbad -1e20 1e20 -1e20\n", encoding="utf-8")
    matrix = read_vectors(path, _VOCAB, seed=0).matrix
    assert np.isfinite(matrix).all() and np.abs(matrix[4]).max() > 1e18  # "plot": drawn with the vectors' std
