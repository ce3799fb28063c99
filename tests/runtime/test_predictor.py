from __future__ import annotations

import itertools
import random
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_onnx.runtime.errors import EmptyInputError, InputTooLongError
from lstm_onnx.runtime.predictor import Prediction, TextClassifier, softmax

# Batches of different sizes run different GEMM blockings inside ONNX Runtime's LSTM: measured max |Δprob|
# 6e-8 on the tiny bundle. Labels must agree exactly.
BATCH_INVARIANCE_ATOL = 1e-6
_WORDS = ["the", "movie", "was", "great", "awful", "boring", "loved", "plot", ",", ".", "!", "really", "zebra"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@given(st.text(max_size=300))
def test_predict_any_text_gives_probabilities_or_empty_error(tiny_model: TextClassifier, text: str) -> None:
    if not tiny_model.bundle.tokenizer.tokenize(text):
        with pytest.raises(EmptyInputError, match="position 0"):
            tiny_model.predict([text])
        return
    probs = tiny_model.predict_proba([text])
    assert probs.shape == (1, 2) and probs.dtype == np.float32
    assert ((probs >= 0) & (probs <= 1)).all()
    assert abs(float(probs.sum()) - 1) <= 1e-5
    assert np.array_equal(probs, tiny_model.predict_proba([text]))


@pytest.mark.parametrize(
    "text",
    ["😀👍🏽 great", "עברית great مرحبا", "e\u0301 cafe\u0301", "bad\x00\x07\x1b[31m", "lone \ud800 surrogate", "Ⅻ ﬁ"],
)
def test_predict_accepts_any_unicode(tiny_model: TextClassifier, text: str) -> None:
    (pred,) = tiny_model.predict([text])
    assert pred.label in ("neg", "pos") and sum(pred.probabilities.values()) == pytest.approx(1, abs=1e-5)


def test_predict_returns_prediction_fields(tiny_model: TextClassifier) -> None:
    (pred,) = tiny_model.predict(["A great movie!"])
    assert isinstance(pred, Prediction) and pred.truncated is False
    assert pred.score == max(pred.probabilities.values()) and pred.probabilities[pred.label] == pred.score


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
def test_predict_rejects_non_string_naming_position(tiny_model: TextClassifier, bad: object) -> None:
    with pytest.raises(TypeError, match=f"position 1 is {type(bad).__name__}, not str"):
        tiny_model.predict(["fine", bad])  # type: ignore[list-item]


def test_predict_rejects_a_bare_string(tiny_model: TextClassifier) -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        tiny_model.predict("great")


@pytest.mark.parametrize("empty", ["", "   ", "\n\t", "<br /><br />"])
def test_predict_rejects_empty_text_naming_position(tiny_model: TextClassifier, empty: str) -> None:
    with pytest.raises(EmptyInputError, match="position 2 is empty or whitespace-only"):
        tiny_model.predict(["good", "bad", empty])


def test_predict_rejects_too_long_text_with_hint(tiny_model: TextClassifier) -> None:
    model = TextClassifier(tiny_model.bundle, max_length=5)
    with pytest.raises(InputTooLongError, match=r"position 1 has 7 tokens; max_length is 5.*--truncate") as info:
        model.predict(["ok", "one two three four five six seven"])
    assert info.value.position == 1


def test_predict_truncates_when_asked_and_warns(tiny_model: TextClassifier) -> None:
    model = TextClassifier(tiny_model.bundle, max_length=3, truncate=True)
    with pytest.warns(UserWarning, match="1 text.* truncated"):
        long, short = model.predict(["the movie was awful boring", "great"])
    assert long.truncated and not short.truncated
    assert long.probabilities == tiny_model.predict(["the movie was"])[0].probabilities


def test_predict_reads_a_one_megabyte_text_when_the_character_limit_is_raised(tiny_model: TextClassifier) -> None:
    text = ("A great movie, really. " * 45_000)[:1_000_000]
    with pytest.raises(InputTooLongError, match="1000000 characters; max_chars is 100000"):
        tiny_model.predict([text])
    (pred,) = TextClassifier(tiny_model.bundle, max_chars=1_000_000).predict([text])
    assert pred.truncated is False and sum(pred.probabilities.values()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 5, 64])
def test_predict_is_invariant_to_batch_size_and_order(tiny_model: TextClassifier, batch_size: int) -> None:
    texts = _texts(40)
    reference = tiny_model.predict_proba(texts)
    order = list(range(len(texts)))
    random.Random(batch_size).shuffle(order)
    shuffled = TextClassifier(tiny_model.bundle, batch_size=batch_size).predict_proba([texts[i] for i in order])
    restored = np.empty_like(shuffled)
    restored[order] = shuffled
    np.testing.assert_allclose(restored, reference, rtol=0, atol=BATCH_INVARIANCE_ATOL)
    assert (restored.argmax(1) == reference.argmax(1)).all()


def test_predict_padding_does_not_change_prediction(tiny_model: TextClassifier) -> None:
    alone = tiny_model.predict_proba(["great"])
    with_long_neighbour = tiny_model.predict_proba(["great", " ".join(["boring"] * 50)])[:1]
    np.testing.assert_allclose(with_long_neighbour, alone, rtol=0, atol=BATCH_INVARIANCE_ATOL)


def test_predict_is_thread_safe(tiny_model: TextClassifier) -> None:
    texts = _texts(64, seed=3)
    reference = [p.label for p in tiny_model.predict(texts)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda chunk: tiny_model.predict(chunk), [texts] * 16))
    assert all([p.label for p in r] == reference for r in results)


def test_iter_predict_matches_predict_and_is_lazy(tiny_model: TextClassifier) -> None:
    texts = _texts(25, seed=4)
    streamed = list(tiny_model.iter_predict(iter(texts), chunk_size=4))
    assert [p.label for p in streamed] == [p.label for p in tiny_model.predict(texts)]

    def endless() -> Iterator[str]:
        while True:
            yield "a great film"

    assert len(list(itertools.islice(tiny_model.iter_predict(endless(), chunk_size=8), 20))) == 20


def test_iter_predict_positions_count_from_stream_start(tiny_model: TextClassifier) -> None:
    with pytest.raises(EmptyInputError, match="position 9"):
        list(tiny_model.iter_predict(["good"] * 9 + [""], chunk_size=4))


def test_predict_proba_of_nothing_is_empty(tiny_model: TextClassifier) -> None:
    assert tiny_model.predict_proba([]).shape == (0, 2)


def test_softmax_is_stable_for_huge_logits() -> None:
    probs = softmax(np.array([[1e4, -1e4], [3.0, 3.0]], np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs, [[1, 0], [0.5, 0.5]])
