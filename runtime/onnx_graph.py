"""Read the few facts ``load_bundle`` checks from an ONNX file without the ``onnx`` package (which the runtime lacks).

An ONNX file is a protobuf ``ModelProto``. This module walks its wire format (varints and length-delimited
fields) far enough to find the lookup tables: each ``Gather`` whose indices come from an id input (``input_ids``, a
tagger's ``char_ids``), traced back through casts and dequantization to the stored tensor, an initializer or a
``Constant`` node's value, whose size along the gathered axis is the number of ids the model can look up. A table
this cannot trace (computed by other ops) is reported as such, so the caller can refuse a graph whose vocabulary size
it cannot check, instead of letting ONNX Runtime fail on every input holding a high id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["UNTRACEABLE", "embedding_rows", "lookup_tables"]

# Field numbers from onnx.proto: ModelProto.graph, GraphProto.node/initializer,
# NodeProto.input/output/op_type/attribute, AttributeProto.name/i/t/floats/ints/sparse_tensor, TensorProto.dims/name,
# SparseTensorProto.dims.
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTR_NAME, _ATTR_I, _ATTR_T, _ATTR_FLOATS, _ATTR_INTS, _ATTR_SPARSE = 1, 3, 5, 7, 8, 22
_TENSOR_DIMS, _TENSOR_NAME = 1, 8
_SPARSE_DIMS = 3
# Ops an id tensor passes through with its values unchanged.
_IDS_PASS_THROUGH = {"Cast", "Transpose", "Identity", "Unsqueeze", "Reshape", "DequantizeLinear", "Squeeze"}
# Ops a table passes through with its shape unchanged (a Transpose or Reshape would move the gathered axis).
_TABLE_PASS_THROUGH = {"Cast", "Identity", "DequantizeLinear"}
# A Gather of ids whose table is computed by other ops: its size cannot be read from the file.
UNTRACEABLE = -1


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
        elif wire in (1, 5):  # fixed64 / fixed32 (a float of an unpacked repeated field): counted, not read
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise _Malformed("truncated field")
            yield number, wire, 0
        else:
            raise _Malformed(f"unsupported wire type {wire}")


@dataclass
class _Node:
    op_type: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    axis: int = 0  # a Gather's axis attribute
    value_dims: list[int] | None = None  # a Constant's value shape


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _ints(wire: int, value: int | bytes) -> list[int]:
    """A repeated int64 field's values from one occurrence: a varint, or a packed run of them."""
    if wire == 0 and isinstance(value, int):
        return [value]
    out: list[int] = []
    if isinstance(value, bytes):
        pos = 0
        while pos < len(value):
            item, pos = _varint(value, pos)
            out.append(item)
    return out


def _signed(value: int) -> int:
    """An int64 read as an unsigned varint, back to its sign (axis=-1 is written as 2**64 - 1)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor(buf: bytes, dims_field: int = _TENSOR_DIMS) -> tuple[str, list[int]]:
    """A TensorProto's (or, with ``dims_field``, a SparseTensorProto's) name and dims."""
    name, dims = "", []
    for n, w, v in _fields(buf):
        if n == dims_field:
            dims += _ints(w, v)
        elif n == _TENSOR_NAME and dims_field == _TENSOR_DIMS:
            name = _text(v)
    return name, dims


def _attribute(node: _Node, buf: bytes) -> None:
    """Keep what the tracing needs from one attribute: a Gather's axis, a Constant's value shape."""
    name, integer, dims = "", None, None
    for n, w, v in _fields(buf):
        if n == _ATTR_NAME:
            name = _text(v)
        elif n == _ATTR_I and isinstance(v, int):
            integer = _signed(v)
        elif n == _ATTR_T and isinstance(v, bytes):
            dims = _tensor(v)[1]
        elif n == _ATTR_SPARSE and isinstance(v, bytes):
            dims = _tensor(v, _SPARSE_DIMS)[1]
        elif n == _ATTR_INTS:
            dims = [(dims or [0])[0] + len(_ints(w, v))]
        elif n == _ATTR_FLOATS:
            dims = [(dims or [0])[0] + (len(v) // 4 if isinstance(v, bytes) else 1)]
    if node.op_type == "Gather" and name == "axis" and integer is not None:
        node.axis = integer
    elif node.op_type == "Constant" and name in ("value", "sparse_value", "value_floats", "value_ints"):
        node.value_dims = dims


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
            attributes = []
            for n, _, v in _fields(value):
                if n == _NODE_INPUT:
                    node.inputs.append(_text(v))
                elif n == _NODE_OUTPUT:
                    node.outputs.append(_text(v))
                elif n == _NODE_OP_TYPE:
                    node.op_type = _text(v)
                elif n == _NODE_ATTRIBUTE and isinstance(v, bytes):
                    attributes.append(v)
            for attribute in attributes:  # after the op type, which may come last
                _attribute(node, attribute)
            nodes.append(node)
        elif number == _GRAPH_INITIALIZER:
            name, dims = _tensor(value)
            shapes[name] = dims
    # A Constant node's output is a stored tensor like an initializer (moving the table there must not hide it).
    for node in nodes:
        if node.op_type == "Constant" and node.value_dims is not None and node.outputs:
            shapes[node.outputs[0]] = node.value_dims
    return nodes, shapes


def lookup_tables(model: bytes, ids_input: str) -> list[int] | None:
    """How many ids each table looked up by ``ids_input`` holds, read from the serialized model.

    Args:
        model: The bytes of an ``.onnx`` file.
        ids_input: Name of a graph input holding ids (``input_ids``, ``char_ids``).

    Returns:
        One entry per ``Gather`` whose indices are ``ids_input`` (through casts and reshapes): the size of its table
        along the gathered axis, or ``UNTRACEABLE`` when the table is computed rather than stored (initializer or
        ``Constant``, through casts and dequantization). ``None`` when the bytes are not a readable ONNX model (ONNX
        Runtime then reports the problem itself).
    """
    try:
        nodes, shapes = _parse_graph(model)
    except _Malformed:
        return None
    producer = {out: node for node in nodes for out in node.outputs}
    # Names that carry the ids, unchanged but for casts and reshapes.
    carries_ids = {ids_input}
    for node in nodes:  # exporters write nodes in topological order
        if node.op_type in _IDS_PASS_THROUGH and node.inputs and node.inputs[0] in carries_ids:
            carries_ids.update(node.outputs)
    tables = []
    for node in nodes:
        if node.op_type != "Gather" or len(node.inputs) < 2 or node.inputs[1] not in carries_ids:
            continue
        tables.append(_table_size(node.inputs[0], node.axis, shapes, producer))
    return tables


def _table_size(table: str, axis: int, shapes: dict[str, list[int]], producer: dict[str, _Node]) -> int:
    for _ in range(8):  # follow Cast / DequantizeLinear back to the stored weights
        if table in shapes:
            dims = shapes[table]
            return dims[axis] if -len(dims) <= axis < len(dims) else UNTRACEABLE
        source = producer.get(table)
        if source is None or source.op_type not in _TABLE_PASS_THROUGH or not source.inputs:
            break
        table = source.inputs[0]
    return UNTRACEABLE


def embedding_rows(model: bytes, ids_input: str) -> int | None:
    """Rows of the embedding table that ``ids_input`` indexes (the first such ``Gather``'s table).

    Returns:
        Its size along the gathered axis; ``None`` when the graph has no ``Gather`` of ``ids_input``, its table is
        computed rather than stored, or the bytes are not a readable ONNX model.
    """
    tables = lookup_tables(model, ids_input)
    if not tables or tables[0] == UNTRACEABLE:
        return None
    return tables[0]
