"""runtime.onnx_graph: the size of every table an id input is looked up in, read without the onnx package, wherever
the graph stores the table (initializer or Constant node) and refused as unknown where the graph computes it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lstm_onnx.runtime.onnx_graph import UNTRACEABLE, embedding_rows, lookup_tables

_TABLE = numpy_helper.from_array(np.zeros((7, 3), np.float32), "table")


def _graph(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]) -> bytes:
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "T"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [ids], [out], initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_table_in_an_initializer() -> None:
    model = _graph([helper.make_node("Gather", ["table", "input_ids"], ["out"])], [_TABLE])
    assert lookup_tables(model, "input_ids") == [7] and embedding_rows(model, "input_ids") == 7


def test_table_in_a_constant_node() -> None:
    nodes = [
        helper.make_node("Constant", [], ["table"], value=_TABLE),
        helper.make_node("Gather", ["table", "input_ids"], ["out"]),
    ]
    assert lookup_tables(_graph(nodes, []), "input_ids") == [7]


def test_table_in_a_sparse_constant_node() -> None:
    values = numpy_helper.from_array(np.ones(2, np.float32), "values")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "indices")
    sparse = helper.make_sparse_tensor(values, indices, [9, 2])
    nodes = [
        helper.make_node("Constant", [], ["table"], sparse_value=sparse),
        helper.make_node("Gather", ["table", "input_ids"], ["out"]),
    ]
    assert lookup_tables(_graph(nodes, []), "input_ids") == [9]


def test_table_in_a_value_floats_constant() -> None:
    nodes = [
        helper.make_node("Constant", [], ["table"], value_floats=[0.5] * 5),  # one fixed32 field per float
        helper.make_node("Gather", ["table", "input_ids"], ["out"]),
    ]
    assert lookup_tables(_graph(nodes, []), "input_ids") == [5]


def test_table_through_cast_and_ids_through_cast() -> None:
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["table"], ["table16"], to=TensorProto.FLOAT16),
        helper.make_node("Gather", ["table16", "ids32"], ["out"]),
    ]
    assert lookup_tables(_graph(nodes, [_TABLE]), "input_ids") == [7]


def test_gather_axis_picks_the_dimension() -> None:
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["out"], axis=-1)]
    assert lookup_tables(_graph(nodes, [_TABLE]), "input_ids") == [3]


@pytest.mark.parametrize("op", ["Add", "Transpose"])
def test_a_computed_or_reshaped_table_is_untraceable(op: str) -> None:
    zero = numpy_helper.from_array(np.zeros((1, 3), np.float32), "zero")
    inputs = ["table", "zero"] if op == "Add" else ["table"]
    nodes = [
        helper.make_node(op, inputs, ["computed"]),
        helper.make_node("Gather", ["computed", "input_ids"], ["out"]),
    ]
    assert lookup_tables(_graph(nodes, [_TABLE, zero]), "input_ids") == [UNTRACEABLE]
    assert embedding_rows(_graph(nodes, [_TABLE, zero]), "input_ids") is None


def test_no_gather_of_the_ids_and_unreadable_bytes() -> None:
    assert lookup_tables(_graph([helper.make_node("Gather", ["table", "table"], ["out"])], [_TABLE]), "input_ids") == []
    assert lookup_tables(b"\xff\xff garbage", "input_ids") is None
