"""``BatchPredictor``: a picklable, lazily loaded classifier for batch engines (Ray Data, Spark, local processes).

It fits two contracts without importing either engine:

- Ray Data's ``Dataset.map_batches(BatchPredictor, fn_constructor_kwargs=..., batch_format="numpy")``: the class is
  built once per actor and called with ``dict[str, np.ndarray]`` batches.
- Spark's ``pyspark.ml.functions.predict_batch_udf(make_predict_fn)``: ``make_predict_fn`` returns
  ``BatchPredictor(bundle).predict_texts``, which maps a (B,) array of texts to a dict of (B,) / (B, C) arrays.

The model (an ONNX Runtime session) is loaded on the first call, in the process that runs it, and never pickled: a
predictor pickles the same before and after use, so an engine can ship it to any worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from lstm_onnx.runtime.errors import DataError, InputError
from lstm_onnx.runtime.limits import MAX_BATCH_SIZE, MAX_TEXT_CHARS, MAX_THREADS, check_range

if TYPE_CHECKING:
    from lstm_onnx.runtime.predictor import Prediction, TextClassifier

__all__ = ["PREDICTION_COLUMNS", "BatchPredictor", "predictions_from_columns"]

# Columns a call adds to the batch; the input's columns (text, id, anything else) pass through unchanged.
PREDICTION_COLUMNS = ("label", "score", "probabilities", "truncated")


class BatchPredictor:
    """Classify batches of texts held in numpy columns; the model loads once per process, on first use.

    Args:
        bundle: Bundle directory.
        text_column: Column holding the texts.
        id_column: Column holding row identifiers, named in error messages when present.
        threads: ONNX Runtime intra-op threads per process (1: engines run one process per core).
        batch_size: Most texts per ONNX Runtime call.
        max_length: Token limit; ``None`` uses the bundle's.
        truncate: Cut over-long texts instead of raising ``InputTooLongError``.
        max_chars: Character limit per text, checked before tokenizing; ``None`` uses the bundle's.
    """

    def __init__(
        self,
        bundle: str | Path,
        *,
        text_column: str = "text",
        id_column: str = "id",
        threads: int = 1,
        batch_size: int = 32,
        max_length: int | None = None,
        truncate: bool = False,
        max_chars: int | None = None,
    ) -> None:
        # Checked here, not when a worker first loads the model: a bad value stops the run before any worker starts.
        check_range("threads", threads, 1, MAX_THREADS)
        check_range("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        for name, value in (("max_length", max_length), ("max_chars", max_chars)):
            check_range(name, value, 1, MAX_TEXT_CHARS, optional=True)
        self.bundle = str(bundle)
        self.text_column = text_column
        self.id_column = id_column
        self.threads = threads
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncate = truncate
        self.max_chars = max_chars
        self._model: TextClassifier | None = None
        self.loads = 0  # how many times this instance loaded its model (1 after any number of calls)

    def settings(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this predictor (for engines that construct it themselves)."""
        names = ("text_column", "id_column", "threads", "batch_size", "max_length", "truncate", "max_chars")
        return {"bundle": self.bundle, **{name: getattr(self, name) for name in names}}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # sessions are not picklable; each process loads its own
        state["loads"] = 0
        return state

    @property
    def model(self) -> TextClassifier:
        """The classifier, loaded on first access in this process (CPU provider)."""
        if self._model is None:
            from lstm_onnx.runtime.predictor import TextClassifier

            self._model = TextClassifier.load(
                self.bundle,
                providers="cpu",
                threads=self.threads,
                batch_size=self.batch_size,
                max_length=self.max_length,
                truncate=self.truncate,
                max_chars=self.max_chars,
            )
            self.loads += 1
        return self._model

    @property
    def labels(self) -> list[str]:
        """Label names in probability-column order."""
        return self.model.labels

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Classify one batch (Ray Data's ``map_batches`` contract).

        Args:
            batch: Columns of B rows; ``text_column`` holds str, an ``id_column`` is optional.

        Returns:
            The input columns plus ``label`` object (B,), ``score`` float32 (B,), ``probabilities`` float32 (B, C)
            in ``labels`` order, ``truncated`` bool (B,).

        Raises:
            DataError: The text column is missing or a row's text is not a string (names the row's id).
            EmptyInputError, InputTooLongError: A text breaks the input rules (names the row's id).
        """
        return self.call(batch)

    def call(self, batch: dict[str, NDArray[Any]], first_row: int | None = None) -> dict[str, NDArray[Any]]:
        """``__call__`` for a batch whose first row is ``first_row`` of the whole input (named in error messages)."""
        if self.text_column not in batch:
            raise DataError(
                f"Batch has no {self.text_column!r} column (columns: {sorted(batch)}); "
                "name the text column with text_column=."
            )
        out = dict(batch)
        out.update(self.predict_texts(batch[self.text_column], batch.get(self.id_column), first_row))
        return out

    def predict_texts(
        self, texts: NDArray[Any], ids: NDArray[Any] | None = None, first_row: int | None = None
    ) -> dict[str, NDArray[Any]]:
        """Classify a column of texts (Spark's ``predict_batch_udf`` contract: one input column, dict out).

        Args:
            texts: (B,) texts.
            ids: (B,) identifiers for error messages (``None``: positions in this batch).
            first_row: The position of the batch's first row in the whole input, when the caller knows it: error
                messages then name the row (``Row 15000 (id=...)``), not a position in the batch.

        Returns:
            ``label`` object (B,), ``score`` float32 (B,), ``probabilities`` float32 (B, C), ``truncated`` bool (B,).

        Raises:
            DataError, EmptyInputError, InputTooLongError: As ``__call__``.
        """
        items = [
            _as_text(t, _row_name(ids, i, first_row)) for i, t in enumerate(np.asarray(texts, dtype=object).ravel())
        ]
        model = self.model
        try:
            preds = model.predict(items)
        except InputError as err:
            if err.position is None:
                raise
            where = _row_name(ids, err.position, first_row)
            raise type(err)(f"Row {where}: {_without_position(err)}", err.position) from err
        return {
            "label": np.array([p.label for p in preds], dtype=object),
            "score": np.array([p.score for p in preds], dtype=np.float32),
            "probabilities": np.array([[p.probabilities[lb] for lb in model.labels] for p in preds], np.float32)
            if preds
            else np.empty((0, len(model.labels)), np.float32),
            "truncated": np.array([p.truncated for p in preds], dtype=bool),
        }


def predictions_from_columns(columns: dict[str, NDArray[Any]], labels: list[str]) -> Iterator[Prediction]:
    """Rebuild ``Prediction`` objects from a batch returned by ``BatchPredictor``, values unchanged.

    Args:
        columns: A batch holding ``PREDICTION_COLUMNS``.
        labels: Label names in probability-column order.

    Yields:
        One ``Prediction`` per row, in row order.
    """
    from lstm_onnx.runtime.predictor import Prediction

    for label, score, probs, cut in zip(
        columns["label"], columns["score"], columns["probabilities"], columns["truncated"], strict=True
    ):
        # float() of the float32 values: the same numbers TextClassifier.predict puts in a Prediction.
        yield Prediction(str(label), float(score), dict(zip(labels, map(float, probs), strict=True)), bool(cut))


def _row_name(ids: NDArray[Any] | None, i: int, first_row: int | None = None) -> str:
    """``15000 (id='r7')`` when the row's place in the input is known, else ``id='r7'`` or ``at batch position 3``."""
    if first_row is not None:
        return f"{first_row + i}" + ("" if ids is None else f" (id={_plain(ids[i])!r})")
    return f"at batch position {i}" if ids is None else f"id={_plain(ids[i])!r}"


# "Text at position 664 has ...": the model counts among the texts of one call, which means nothing to the user.
_POSITION = re.compile(r" at position(?:\(s\)|s)? (?:\[[^\]]*\]|\d+)")


def _without_position(err: InputError) -> str:
    return _POSITION.sub("", str(err), count=1)


def _plain(value: Any) -> Any:
    """A numpy scalar as the matching Python value (JSON-able)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return str(value)  # np.str_ to str
    raise DataError(f"Row {where} has text {value!r} of type {type(value).__name__}; every text must be a string.")
