"""Read the few facts ``load_bundle`` checks from an ONNX file without the ``onnx`` package (which the runtime lacks).

An ONNX file is a protobuf ``ModelProto``. This module walks its wire format (varints and length-delimited
fields) far enough to find the embedding table: the ``Gather`` whose indices come from ``input_ids``, traced back
through casts, transposes and dequantization to a 2-D initializer, whose first dimension is the number of
token ids the model can look up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["embedding_rows"]

# Field numbers from onnx.proto: ModelProto.graph, GraphProto.node/initializer, NodeProto.input/output/op_type,
# TensorProto.dims/name.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE = 1, 2, 4
_TENSOR_DIMS, _TENSOR_NAME = 1, 8
# Ops an id tensor or a weight table passes through unchanged in row count.
_PASS_THROUGH = {"Cast", "Transpose", "Identity", "Unsqueeze", "Reshape", "DequantizeLinear", "Squeeze"}


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _Malformed("truncated field")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")


@dataclass
class _Node:
    op_type: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _parse_graph(model: bytes) -> tuple[list[_Node], dict[str, list[int]]]:
    graph = next((v for n, w, v in _fields(model) if n == _MODEL_GRAPH and isinstance(v, bytes)), None)
    if graph is None:
        raise _Malformed("no graph")
    nodes: list[_Node] = []
    shapes: dict[str, list[int]] = {}
    for number, _, value in _fields(graph):
        if not isinstance(value, bytes):
            continue
        if number == _GRAPH_NODE:
            node = _Node()
            for n, _, v in _fields(value):
                if n == _NODE_INPUT:
                    node.inputs.append(_text(v))
                elif n == _NODE_OUTPUT:
                    node.outputs.append(_text(v))
                elif n == _NODE_OP_TYPE:
                    node.op_type = _text(v)
            nodes.append(node)
        elif number == _GRAPH_INITIALIZER:
            dims: list[int] = []
            name = ""
            for n, w, v in _fields(value):
                if n == _TENSOR_DIMS and w == 0 and isinstance(v, int):
                    dims.append(v)
                elif n == _TENSOR_DIMS and isinstance(v, bytes):  # packed
                    pos = 0
                    while pos < len(v):
                        d, pos = _varint(v, pos)
                        dims.append(d)
                elif n == _TENSOR_NAME:
                    name = _text(v)
            shapes[name] = dims
    return nodes, shapes


def embedding_rows(model: bytes, ids_input: str) -> int | None:
    """Rows of the embedding table that ``ids_input`` indexes, read from the serialized model.

    Args:
        model: The bytes of an ``.onnx`` file.
        ids_input: Name of the graph input holding token ids.

    Returns:
        The table's first dimension, or ``None`` when the graph has no recognisable embedding ``Gather``
        or the bytes are not a readable ONNX model (ONNX Runtime then reports the problem itself).
    """
    try:
        nodes, shapes = _parse_graph(model)
    except _Malformed:
        return None
    producer = {out: node for node in nodes for out in node.outputs}
    # Names that carry the ids, unchanged but for casts and reshapes.
    carries_ids = {ids_input}
    for node in nodes:  # exporters write nodes in topological order
        if node.op_type in _PASS_THROUGH and node.inputs and node.inputs[0] in carries_ids:
            carries_ids.update(node.outputs)
    for node in nodes:
        if node.op_type != "Gather" or len(node.inputs) < 2 or node.inputs[1] not in carries_ids:
            continue
        table = node.inputs[0]
        for _ in range(8):  # follow Cast / DequantizeLinear back to the stored weights
            if table in shapes:
                dims = shapes[table]
                return dims[0] if len(dims) == 2 else None
            source = producer.get(table)
            if source is None or source.op_type not in _PASS_THROUGH or not source.inputs:
                break
            table = source.inputs[0]
    return None
