"""Inputs of a user's module: names from ``forward``, dynamic axes (given or inferred), and resized copies.

Resizing is how export and verification reach shapes the export never saw without knowing what the inputs mean:
rows and time steps of the example are repeated cyclically (token ids stay valid ids), and a lengths input (1-D
integers along the batch axis) gets fresh lengths in [1, T], one of them T, sorted longest first when the example's
were (``pack_padded_sequence``'s default ``enforce_sorted=True`` requires it).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from lstm_onnx.runtime.errors import ExportError

__all__ = [
    "BATCH",
    "SEQUENCE",
    "InputSpec",
    "flatten_outputs",
    "infer_spec",
    "output_names_of",
    "resize",
    "run_module",
]

BATCH = "batch_size"
SEQUENCE = "sequence_length"
Axes = dict[str, dict[int, str]]


@dataclass(frozen=True)
class InputSpec:
    """How a module's inputs are named and which of their axes are dynamic.

    Attributes:
        names: ``forward``'s parameter names, in order (the ONNX input names).
        axes: ``torch.onnx.export``-style dynamic axes per input name ({axis: axis name}).
        lengths_input: Name of the lengths input (1-D integers along the batch axis), or ``None``.
        lengths_sorted: The example's lengths were sorted longest first.
        other_lengths: Further lengths inputs (e.g. a pair model's second text); resizing gives them the same
            lengths as ``lengths_input``, so every sequence input stays consistent with its lengths.
    """

    names: tuple[str, ...]
    axes: Axes
    lengths_input: str | None
    lengths_sorted: bool
    other_lengths: tuple[str, ...] = ()

    def batch_size(self, inputs: Sequence[NDArray[Any]]) -> int | None:
        """B of ``inputs`` (``None`` when no input has a batch axis, e.g. an unbatched (T, F) input)."""
        for name, array in zip(self.names, inputs, strict=True):
            for axis, label in self.axes.get(name, {}).items():
                if label == BATCH:
                    return int(array.shape[axis])
        return None


def _first_rnn(model: nn.Module) -> nn.LSTM | nn.GRU | None:
    return next((m for m in model.modules() if isinstance(m, (nn.LSTM, nn.GRU))), None)


def forward_names(model: nn.Module, count: int) -> tuple[str, ...]:
    """The first ``count`` parameter names of ``model.forward``.

    Raises:
        ExportError: ``forward`` takes fewer named parameters than there are example inputs.
    """
    params = [
        p.name
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) < count:
        raise ExportError(
            f"{type(model).__name__}.forward takes {len(params)} named parameter(s) {params}, but {count} example "
            "inputs were given. Pass one example per parameter, in order."
        )
    return tuple(params[:count])


def infer_spec(model: nn.Module, example: Sequence[torch.Tensor], dynamic_axes: Axes | None) -> InputSpec:
    """Name the inputs after ``forward`` and take or infer their dynamic axes.

    Inference: a 1-D integer input is the lengths (its size is B); in other inputs the dim of size B is the batch
    axis and every other dim is the sequence axis, except a float tensor's last dim (features). Without a lengths
    input, the first RNN's ``batch_first`` decides, and a 2-D float input is unbatched (T, F).

    Args:
        model: The user's module.
        example: Example input tensors, in ``forward``'s order.
        dynamic_axes: Given axes keyed by input name (kept as given), or ``None`` to infer.

    Returns:
        The spec.

    Raises:
        ExportError: A non-tensor example, or a batch size equal to a sequence length (ambiguous; change one).
    """
    names = forward_names(model, len(example))
    for name, value in zip(names, example, strict=True):
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"Example input {name!r} is a {type(value).__name__}; pass a tensor for it.")
    lengths = [n for n, t in zip(names, example, strict=True) if t.dim() == 1 and not t.is_floating_point()]
    lengths_input = lengths[0] if lengths else None
    others = tuple(n for n in lengths[1:] if example[names.index(n)].shape == example[names.index(lengths[0])].shape)
    sorted_ = False
    if lengths_input is not None:
        sorted_ = all(
            bool((values[:-1] >= values[1:]).all())
            for values in (example[names.index(n)] for n in (lengths_input, *others))
        )
    if dynamic_axes is not None:
        return InputSpec(names, {k: dict(v) for k, v in dynamic_axes.items()}, lengths_input, sorted_, others)
    axes: Axes = {}
    batch = int(example[names.index(lengths_input)].shape[0]) if lengths_input is not None else None
    rnn = _first_rnn(model)
    batch_first = bool(rnn.batch_first) if rnn is not None else True
    for name, tensor in zip(names, example, strict=True):
        dims = range(tensor.dim() - 1 if tensor.is_floating_point() and tensor.dim() >= 2 else tensor.dim())
        if name == lengths_input or name in others:
            axes[name] = {0: BATCH}
        elif batch is not None:
            if any(tensor.shape[d] == batch for d in dims) and any(tensor.shape[d] != batch for d in dims):
                axes[name] = {d: BATCH if tensor.shape[d] == batch else SEQUENCE for d in dims}
            elif all(tensor.shape[d] == batch for d in dims) and len(dims) > 1:
                raise ExportError(
                    f"Input {name!r} has shape {tuple(tensor.shape)}: its batch size equals its sequence length, "
                    "so their axes cannot be told apart. Give the example different sizes or pass dynamic_axes."
                )
            else:
                axes[name] = {d: BATCH if tensor.shape[d] == batch else SEQUENCE for d in dims}
        elif tensor.is_floating_point() and tensor.dim() == 2:
            axes[name] = {0: SEQUENCE}
        else:
            order = (BATCH, SEQUENCE) if batch_first else (SEQUENCE, BATCH)
            axes[name] = {d: order[d] if d < 2 else SEQUENCE for d in dims}
    return InputSpec(names, axes, lengths_input, sorted_, others)


def resize(
    spec: InputSpec, example: Sequence[NDArray[Any]], batch: int, steps: int, rng: np.random.Generator
) -> list[NDArray[Any]]:
    """The example resized to B = ``batch``, T = ``steps`` along its dynamic axes (see the module docstring).

    Args:
        spec: Names and axes.
        example: Example inputs as numpy arrays.
        batch: New B.
        steps: New T (>= 1).
        rng: Draws the new lengths.

    Returns:
        New inputs, in ``spec.names`` order.
    """
    out: list[NDArray[Any]] = []
    drawn = rng.integers(1, steps + 1, size=batch)
    drawn[rng.integers(batch)] = steps
    if spec.lengths_sorted:
        drawn = np.sort(drawn)[::-1].copy()
    for name, array in zip(spec.names, example, strict=True):
        if name == spec.lengths_input or name in spec.other_lengths:
            out.append(drawn.astype(array.dtype))
            continue
        resized = array
        for axis, label in spec.axes.get(name, {}).items():
            size = batch if label == BATCH else steps
            resized = np.take(resized, np.arange(size) % resized.shape[axis], axis=axis)
        out.append(np.ascontiguousarray(resized))
    return out


def flatten_outputs(value: Any) -> list[torch.Tensor]:
    """The tensors of a (nested) tuple/list/dict output, depth first (a dict's values in its key order).

    Raises:
        ExportError: Something in it is not a tensor (e.g. ``None`` or a number).
    """
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flatten_outputs(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in flatten_outputs(item)]
    raise ExportError(
        f"forward returned a {type(value).__name__} among its outputs; return a tensor, or a tuple, list or dict "
        "of tensors."
    )


def output_names_of(value: Any) -> tuple[str, ...]:
    """Default ONNX output names for ``forward``'s result: ``output`` for one tensor, ``output_0``, ``output_1``, ...
    for a tuple/list, and a dict's keys (``key_0``, ``key_1``, ... for the tensors under a key holding several)."""
    if isinstance(value, dict):
        names: list[str] = []
        for key, item in value.items():
            count = len(flatten_outputs(item))
            names.extend([str(key)] if count == 1 else [f"{key}_{i}" for i in range(count)])
        return tuple(names)
    count = len(flatten_outputs(value))
    return ("output",) if count == 1 and isinstance(value, torch.Tensor) else tuple(f"output_{i}" for i in range(count))


def run_module(model: nn.Module, inputs: Sequence[torch.Tensor], where: str) -> Any:
    """``model(*inputs)`` without autograd; an exception from the user's code becomes one ``ExportError`` line.

    Raises:
        ExportError: Names the model, ``where`` (which inputs) and the error's type and first line.
    """
    try:
        with torch.no_grad():
            return model(*inputs)
    # The user's forward can raise anything; the line names it and the traceback stays chained.
    except Exception as err:  # noqa: BLE001
        first = str(err).splitlines()[0] if str(err) else ""
        shapes = [tuple(t.shape) for t in inputs]
        raise ExportError(
            f"{type(model).__name__}.forward failed on {where} (shapes {shapes}): {type(err).__name__}: {first}"
        ) from err
