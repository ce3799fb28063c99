"""Inputs of a user's module: names from ``forward``, dynamic axes (the user's, or inferred by measuring), and the
inputs of every shape export and verification try.

Axis names are the user's (``torch.onnx.export``'s convention, ``{"wav": {0: "batch", 1: "samples"}}``): the same
name on two inputs is the same dimension. Without them, axes are *measured*: dims of equal size across inputs are
one candidate dimension, and a candidate is dynamic when the eager model runs with it resized (a waveform's samples,
a batch, a sentence), static when it does not (features, a conv's channels). Inference names what it found
``batch_size`` and ``sequence_length``; a dim that cannot be told apart from another (a batch equal to a length) is
refused with a pointer to ``dynamic_axes``.

Shapes the export never saw are made without knowing what the inputs mean: rows and steps of the example are
repeated cyclically along each dynamic axis (token ids stay valid ids, audio stays audio), and a lengths input
(1-D integers, or speechbrain-style fractions in (0, 1]) gets fresh lengths, one of them the full length, sorted
longest first when the example's were (``pack_padded_sequence``'s ``enforce_sorted=True``). Inputs whose sizes are
coupled (WaveRNN: samples = (frames - 4) x hop) come from the user's ``make_inputs(batch, length)`` instead.
"""

from __future__ import annotations

import inspect
import math
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from lstm_onnx.runtime.errors import ExportError

__all__ = [
    "BATCH",
    "SEQUENCE",
    "Axes",
    "InputMaker",
    "InputSpec",
    "default_grid",
    "flat_inputs",
    "flatten_outputs",
    "forward_names",
    "infer_spec",
    "output_names_of",
    "parse_grid",
    "refuse_frozen_dims",
    "run_module",
]

BATCH = "batch_size"
SEQUENCE = "sequence_length"
Axes = dict[str, dict[int, str]]
InputMaker = Callable[[int, int], Sequence[torch.Tensor]]
# (B, T) of one verification case: T is the length of the primary sequence axis (other dynamic axes scale with it).
GridPoint = tuple[int, int]

_LENGTHS_NAME = re.compile(r"len|size|count|num", re.IGNORECASE)
# make_inputs' length for the example is searched up to this.
_MAKER_SEARCH = 4096
# User axis names that mean "the batch" (any name containing "batch" does too).
_BATCH_NAMES = frozenset({"b", "n", "bs", "batch", "nbatch", "num_batch"})


def _is_batch_name(name: str) -> bool:
    return "batch" in name.lower() or name.lower() in _BATCH_NAMES


@dataclass(frozen=True)
class InputSpec:
    """How a module's inputs are named, which of their axes are dynamic, and how to make inputs of any shape.

    Attributes:
        names: ``forward``'s parameter names, in order (the ONNX input names).
        axes: Dynamic axes per input name ({axis: axis name}), the user's names or inferred ones.
        batch: The axis name that is the batch (``None`` when no input has one).
        primary: The axis name a grid point's length sets (the lengths' axis, else the first other dynamic axis).
        sizes: Every dynamic axis name's size in the example.
        lengths_input: Name of the lengths input (1-D along the batch), or ``None``.
        lengths_relative: The lengths are fractions of the padded length (speechbrain), not step counts.
        lengths_sorted: The example's lengths were sorted longest first.
        other_lengths: Further lengths inputs (a pair model's second text), each drawn along its own axis.
        lengths_axes: The axis name each lengths input counts steps along.
        make_inputs: The user's ``make_inputs(batch, length)`` for coupled sizes, or ``None``.
        min_length: The shortest primary length the eager model accepts (measured; 1 when not measured).
        notes: What inference measured, for the report.
        maker_length: The ``length`` argument of ``make_inputs`` that makes the example's shapes (with a maker).
    """

    names: tuple[str, ...]
    axes: Axes
    batch: str | None
    primary: str | None
    sizes: dict[str, int]
    lengths_input: str | None = None
    lengths_relative: bool = False
    lengths_sorted: bool = False
    other_lengths: tuple[str, ...] = ()
    lengths_axes: dict[str, str] = field(default_factory=dict)
    make_inputs: InputMaker | None = field(default=None, compare=False, repr=False)
    min_length: int = 1
    notes: tuple[str, ...] = ()
    maker_length: int | None = None

    @property
    def example_batch(self) -> int | None:
        """B of the example (``None`` without a batch axis)."""
        return None if self.batch is None else self.sizes[self.batch]

    @property
    def example_length(self) -> int | None:
        """T of the example along the primary axis, or in ``make_inputs``'s units (``None`` without one)."""
        if self.maker_length is not None:
            return self.maker_length
        return None if self.primary is None else self.sizes[self.primary]

    def batch_size(self, inputs: Sequence[NDArray[Any]]) -> int | None:
        """B of ``inputs`` (``None`` when no input has a batch axis, e.g. an unbatched (T, F) input)."""
        for name, array in zip(self.names, inputs, strict=True):
            for axis, label in self.axes.get(name, {}).items():
                if label == self.batch:
                    return int(array.shape[axis])
        return None

    def case(
        self, example: Sequence[NDArray[Any]], batch: int, length: int, rng: np.random.Generator, mix: bool = False
    ) -> list[NDArray[Any]]:
        """Inputs of B = ``batch`` and primary length ``length``: the user's ``make_inputs`` when given, else the
        example resized (other dynamic axes scale by ``length / example length``); with ``mix``, every value is
        drawn from the example's own values instead of repeating them in place, so a branch on the data or a
        frozen computation meets inputs unlike the example's.

        Raises:
            ExportError: ``make_inputs`` raised or returned something that is not tensors in ``forward``'s order.
        """
        if self.make_inputs is not None:
            return _made(self.make_inputs, self.names, batch, length)
        sizes = dict(self.sizes)
        base = self.example_length
        for name, size in self.sizes.items():
            if name == self.batch:
                sizes[name] = batch
            elif name == self.primary:
                sizes[name] = length
            elif base:
                sizes[name] = max(1, round(size * length / base))
        return resize(self, example, sizes, rng, mix)


def _made(maker: InputMaker, names: Sequence[str], batch: int, length: int) -> list[NDArray[Any]]:
    try:
        made = maker(batch, length)
    # The user's input maker can fail in any way; one line names it.
    except Exception as err:  # noqa: BLE001
        raise ExportError(f"make_inputs({batch}, {length}) raised {type(err).__name__}: {err}") from err
    made = (made,) if isinstance(made, torch.Tensor) else tuple(t for v in made for t in _leaves(v))
    if len(made) != len(names) or not all(isinstance(t, torch.Tensor) for t in made):
        raise ExportError(
            f"make_inputs({batch}, {length}) returned {len(made)} value(s); expected {len(names)} tensors "
            f"({', '.join(names)})."
        )
    return [np.ascontiguousarray(t.detach().cpu().numpy()) for t in made]


def _leaves(value: Any) -> tuple[Any, ...]:
    """The tensors an input stands for: itself, a tuple/list's items, nothing for ``None``."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class _NestedInputs(nn.Module):
    """Calls the user's model with its inputs rebuilt from flat tensors: a tuple (flair's ``hidden=(h, c)``) from one
    ONNX input per tensor, named ``hidden_0``, ``hidden_1`` after its parameter, and a ``None`` placeholder
    (speechbrain's ``forward(x, hx=None, lengths=None)`` called as ``(x, None, lengths)``) from no input at all."""

    def __init__(self, model: nn.Module, example: Sequence[Any]) -> None:
        super().__init__()
        self.model = model
        params = _positional_names(model, len(example))
        # Per argument: -1 a tensor, 0 None, n > 0 a tuple/list of n tensors.
        self.layout = [-1 if isinstance(v, torch.Tensor) else len(_leaves(v)) for v in example]
        self.kinds = [type(v) if isinstance(v, (tuple, list)) else None for v in example]
        names = [
            n if count == -1 else f"{n}_{i}"
            for n, count in zip(params, self.layout, strict=True)
            for i in range(1 if count == -1 else count)
        ]

        def forward(self: _NestedInputs, *leaves: torch.Tensor) -> Any:
            args: list[Any] = []
            at = 0
            for count, kind in zip(self.layout, self.kinds, strict=True):
                if count == -1:
                    args.append(leaves[at])
                    at += 1
                else:
                    args.append(kind(leaves[at : at + count]) if kind is not None else None)
                    at += count
            return self.model(*args)

        # The bound method's signature drops the first parameter, as for any method: hence "self".
        params_sig = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("self", *names)]
        forward.__signature__ = inspect.Signature(params_sig)  # type: ignore[attr-defined]
        self.forward = types.MethodType(forward, self)


def flat_inputs(model: nn.Module, example: Sequence[Any]) -> tuple[nn.Module, tuple[Any, ...]]:
    """The model and example unchanged, or, when an example input is a tuple/list of tensors (an RNN state ``(h, c)``)
    or ``None`` (a skipped optional parameter), a module taking the flat tensors and the flat example.

    Raises:
        ExportError: A nested input holds something other than tensors.
    """
    if all(isinstance(v, torch.Tensor) for v in example):
        return model, tuple(example)
    for value in example:
        if not all(isinstance(t, torch.Tensor) for t in _leaves(value)):
            raise ExportError(
                f"An example input is a {type(value).__name__} holding something other than tensors; pass tensors "
                "(a tuple of tensors, or None for a skipped optional parameter)."
            )
    return _NestedInputs(model, example).eval(), tuple(t for v in example for t in _leaves(v))


def _positional_names(model: nn.Module, count: int) -> list[str]:
    params = inspect.signature(model.forward).parameters.values()
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names[:count] + [f"input_{i}" for i in range(len(names), count)]


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
    has_varargs = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(model.forward).parameters.values())
    if len(params) < count and has_varargs:
        params += [f"input_{i}" for i in range(len(params), count)]
    if len(params) < count:
        raise ExportError(
            f"{type(model).__name__}.forward takes {len(params)} named parameter(s) {params}, but {count} example "
            "inputs were given. Pass one example per parameter, in order."
        )
    return tuple(params[:count])


def _lengths_like(name: str, tensor: torch.Tensor, others: dict[str, torch.Tensor]) -> tuple[str, int, int] | None:
    """``(kind, input index, axis)`` when a 1-D tensor looks like lengths of another input: integers in [1, a dim of
    that input] (``"absolute"``) or fractions in (0, 1] reaching 1 (``"relative"``), one per row of that input."""
    if tensor.dim() != 1 or tensor.numel() == 0:
        return None
    values = tensor.detach().double()
    rows = tensor.shape[0]
    relative = tensor.is_floating_point()
    if relative and not (bool((values > 0).all()) and bool((values <= 1).all()) and float(values.max()) > 1 - 1e-6):
        return None
    if not relative and (tensor.dtype == torch.bool or not bool((values >= 1).all())):
        return None
    order = list(others)
    here = order.index(name) if name in order else len(order)
    candidates: list[tuple[bool, int, int, int]] = []  # (not exact, distance, input index, axis)
    for index, (other, t) in enumerate(others.items()):
        if other == name or t.dim() < 2 or rows not in t.shape:
            continue
        batch_axis = list(t.shape).index(rows)
        dims = [d for d in range(t.dim()) if d != batch_axis]
        # The input just before the lengths is the one they measure, as in forward(a, a_lengths, b, b_lengths).
        distance = here - index if index < here else len(order) + index
        if relative:
            candidates.append((False, distance, index, max(dims, key=lambda d: t.shape[d])))
            continue
        for d in dims:
            if t.shape[d] >= float(values.max()):
                candidates.append((t.shape[d] != int(values.max()), distance, index, d))
    if not candidates:
        return None
    inexact, _, index, axis = min(candidates)
    # Integers that never reach a padded length are lengths only if named so: a padded batch is as long as its
    # longest item, and a speaker or class id would otherwise be taken for lengths.
    if not relative and inexact and not _LENGTHS_NAME.search(name):
        return None
    return ("relative" if relative else "absolute"), index, axis


def _runs(model: nn.Module, inputs: Sequence[NDArray[Any]]) -> bool:
    """Whether the eager model accepts these inputs (any exception: no)."""
    try:
        with torch.no_grad():
            flatten_outputs(model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs)))
    # Probing: any failure of the user's code means "not at this size".
    except Exception:  # noqa: BLE001
        return False
    return True


def _probe_sizes(size: int) -> list[int]:
    return sorted({size + max(1, size // 2), 2 * size} - {size})


def infer_spec(
    model: nn.Module,
    example: Sequence[torch.Tensor],
    dynamic_axes: Axes | None,
    make_inputs: InputMaker | None = None,
) -> InputSpec:
    """Name the inputs after ``forward``, take the given dynamic axes or measure them, and measure the shortest
    length the model accepts.

    Args:
        model: The user's module (eval mode).
        example: Example input tensors, in ``forward``'s order.
        dynamic_axes: The user's axes keyed by input name (outputs may be named too; they are ignored here), or
            ``None`` to infer.
        make_inputs: The user's input maker for coupled sizes, or ``None``.

    Returns:
        The spec.

    Raises:
        ExportError: A non-tensor example; an input dimension left static that the eager model runs at other
            sizes too (the graph would accept only the example's size); two dims that cannot be told apart.
    """
    names = forward_names(model, len(example))
    for name, value in zip(names, example, strict=True):
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"Example input {name!r} is a {type(value).__name__}; pass a tensor for it.")
    tensors = dict(zip(names, example, strict=True))
    arrays = [np.ascontiguousarray(t.detach().cpu().numpy()) for t in example]
    found = {n: k for n in names if (k := _lengths_like(n, tensors[n], tensors)) is not None}
    lengths = [n for n in names if n in found]
    lengths_input = lengths[0] if lengths else None
    others = tuple(n for n in lengths[1:] if tensors[n].shape == tensors[lengths[0]].shape)
    relative = lengths_input is not None and found[lengths_input][0] == "relative"
    sorted_ = lengths_input is not None and all(
        bool((tensors[n][:-1] >= tensors[n][1:]).all()) for n in (lengths_input, *others)
    )
    if dynamic_axes is not None:
        axes = {k: dict(v) for k, v in dynamic_axes.items() if k in names}
        notes: list[str] = []
        if lengths_input is not None:
            # Lengths left out of the user's axes follow the batch of the input they measure.
            owner = names[found[lengths_input][1]]
            label = axes.get(owner, {}).get(list(tensors[owner].shape).index(tensors[lengths_input].shape[0]))
            for name in (lengths_input, *others):
                if label is not None:
                    axes.setdefault(name, {0: label})
    else:
        axes, notes = _measure_axes(model, names, arrays, lengths_input, (lengths_input, *others), found)
    sizes: dict[str, int] = {}
    for name, array in zip(names, arrays, strict=True):
        for axis, label in axes.get(name, {}).items():
            if axis >= array.ndim or axis < 0:
                raise ExportError(f"dynamic_axes gives {name!r} axis {axis}, but it has {array.ndim} dims.")
            if sizes.setdefault(label, int(array.shape[axis])) != array.shape[axis] and make_inputs is None:
                raise ExportError(
                    f"dynamic_axes names {label!r} on dims of sizes {sizes[label]} and {array.shape[axis]}: one name "
                    "is one dimension. Give them different names, or pass make_inputs for coupled sizes."
                )
    batch = _batch_name(names, axes, lengths_input)
    lengths_axes = {}
    for name in (lengths_input, *others) if lengths_input is not None else ():
        _, index, axis = found[name]
        label = axes.get(names[index], {}).get(axis)
        if label is not None:
            lengths_axes[name] = label
    primary = lengths_axes.get(lengths_input) if lengths_input is not None else None
    if primary is None:
        primary = next((lbl for n in names for lbl in axes.get(n, {}).values() if lbl != batch), None)
    spec = InputSpec(
        names,
        axes,
        batch,
        primary,
        sizes,
        lengths_input,
        relative,
        sorted_,
        others,
        lengths_axes,
        make_inputs,
        notes=tuple(notes),
    )
    if make_inputs is not None:
        spec = _replace(spec, maker_length=_maker_length(make_inputs, names, arrays, spec.example_batch))
    return _with_min_length(model, spec, arrays)


def _maker_length(maker: InputMaker, names: Sequence[str], arrays: list[NDArray[Any]], batch: int | None) -> int:
    """The ``length`` for which ``make_inputs(B, length)`` gives the example's shapes (tried: 1 up to the largest
    size in them).

    Raises:
        ExportError: No such length: the example was not made by ``make_inputs``.
    """
    rows = batch if batch is not None else int(arrays[0].shape[0]) if arrays[0].ndim else 1
    shapes = [a.shape for a in arrays]
    for size in range(1, min(max((int(d) for a in arrays for d in a.shape), default=1), _MAKER_SEARCH) + 1):
        try:
            made = _made(maker, names, rows, size)
        except ExportError:
            continue
        if [a.shape for a in made] == shapes:
            return size
    raise ExportError(
        f"make_inputs({rows}, length) gives the example's shapes {shapes} for no length among their sizes; make the "
        "example with make_inputs."
    )


def _batch_name(names: Sequence[str], axes: Axes, lengths_input: str | None) -> str | None:
    if lengths_input is not None and 0 in axes.get(lengths_input, {}):
        return axes[lengths_input][0]
    labels = [lbl for n in names for lbl in axes.get(n, {}).values()]
    return next((lbl for lbl in labels if _is_batch_name(lbl)), None)


def _measure_axes(
    model: nn.Module,
    names: Sequence[str],
    arrays: list[NDArray[Any]],
    lengths_input: str | None,
    lengths_names: Sequence[str | None],
    found: dict[str, tuple[str, int, int]],
) -> tuple[Axes, list[str]]:
    """Dynamic axes found by resizing each candidate dimension and running the eager model."""
    batch = int(arrays[names.index(lengths_input)].shape[0]) if lengths_input is not None else None
    if batch is None:
        # An RNN state (L*D, B, H) given as an input (flair's language model) names the batch: its dim 1.
        states = {
            (m.num_layers * (2 if m.bidirectional else 1), m.hidden_size)
            for m in model.modules()
            if isinstance(m, nn.RNNBase)
        }
        batch = next((int(a.shape[1]) for a in arrays if a.ndim == 3 and (a.shape[0], a.shape[2]) in states), None)
    # Candidate dimensions: dims of equal size across inputs, probed together (a batch, a shared length).
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, (name, array) in enumerate(zip(names, arrays, strict=True)):
        if name in lengths_names:
            continue
        for axis, size in enumerate(array.shape):
            groups.setdefault(int(size), []).append((i, axis))
    dynamic: list[tuple[int, list[tuple[int, int]]]] = []
    for size, dims in sorted(groups.items()):
        moved = _probe_group(model, names, arrays, dims, size, lengths_names if size == batch else ())
        if moved:
            dynamic.append((size, moved))
    axes: Axes = {}
    notes: list[str] = []
    labels: dict[int, str] = {}
    for size, dims in dynamic:
        inputs_hit = [i for i, _ in dims]
        if len(set(inputs_hit)) != len(inputs_hit):
            where = next(names[i] for i in inputs_hit if inputs_hit.count(i) > 1)
            raise ExportError(
                f"Input {where!r} has two dims of size {size} that both vary, so their axes cannot be told apart. "
                "Give the example different sizes or pass dynamic_axes."
            )
        varying = {d for _, group in dynamic for d in group}
        is_batch = size == batch or (
            batch is None and any(axis == 0 and _batched(arrays[i], i, varying) for i, axis in dims)
        )
        if is_batch and BATCH not in labels.values():
            label = BATCH
        else:
            taken = sum(1 for lbl in labels.values() if lbl != BATCH)
            label = SEQUENCE if taken == 0 else f"{SEQUENCE}_{taken}"
        labels[size] = label
        for i, axis in dims:
            axes.setdefault(names[i], {})[axis] = label
        notes.append(f"{label}: " + ", ".join(f"{names[i]} axis {axis}" for i, axis in dims) + f" (example {size})")
    for lengths_name in lengths_names:
        if lengths_name is not None and BATCH in labels.values():
            axes[lengths_name] = {0: BATCH}
    return {n: dict(sorted(axes[n].items())) for n in names if n in axes}, notes


def _batched(array: NDArray[Any], index: int, varying: set[tuple[int, int]]) -> bool:
    """Dim 0 of a >= 2-D input is its batch, unless it is a 2-D float input with a static second dim: one unbatched
    (T, F) sequence, whose dim 0 is time."""
    unbatched = array.ndim == 2 and np.issubdtype(array.dtype, np.floating) and (index, 1) not in varying
    return array.ndim >= 2 and not unbatched


def _probe_group(
    model: nn.Module,
    names: Sequence[str],
    arrays: list[NDArray[Any]],
    dims: list[tuple[int, int]],
    size: int,
    lengths_names: Sequence[str | None],
) -> list[tuple[int, int]]:
    """The dims of ``dims`` that vary: all together when the model runs with them resized together, else each input's
    dim alone, else none."""
    attempts = [dims] + ([[d] for d in dims] if len(dims) > 1 else [])
    for subset in attempts:
        for new in _probe_sizes(size):
            trial = list(arrays)
            for i, axis in subset:
                trial[i] = np.take(trial[i], np.arange(new) % size, axis=axis)
            for name in lengths_names:
                if name is not None and subset is dims:
                    i = names.index(name)
                    # Longest first: what pack_padded_sequence's enforce_sorted=True asks, and harmless otherwise.
                    trial[i] = np.sort(np.take(trial[i], np.arange(new) % size, axis=0))[::-1].copy()
            if _runs(model, trial):
                return subset
    return []


def refuse_frozen_dims(model: nn.Module, spec: InputSpec, arrays: list[NDArray[Any]]) -> None:
    """Refuse a dim left out of the user's ``dynamic_axes`` that the eager model also runs at other sizes: the graph
    would take only the example's size, which no check at the example's sizes could see.

    Raises:
        ExportError: Names the input, the axis and a size the model runs at.
    """
    if spec.make_inputs is not None:
        return
    for i, (name, array) in enumerate(zip(spec.names, arrays, strict=True)):
        if name in (spec.lengths_input, *spec.other_lengths):
            continue
        for axis, size in enumerate(array.shape):
            if axis in spec.axes.get(name, {}):
                continue
            for new in _probe_sizes(int(size)):
                trial = list(arrays)
                trial[i] = np.take(array, np.arange(new) % size, axis=axis)
                if _runs(model, trial):
                    raise ExportError(
                        f"Input {name!r} axis {axis} (size {size}) is not in dynamic_axes, yet the PyTorch model "
                        f"runs with it at {new} too: the graph would accept only {size}. Name it in dynamic_axes."
                    )


def _with_min_length(model: nn.Module, spec: InputSpec, arrays: list[NDArray[Any]]) -> InputSpec:
    """The spec with the shortest primary length the eager model accepts (1, 2, 4, ... up to the example's)."""
    base = spec.example_length
    if base is None or base <= 1:
        return spec
    rng = np.random.default_rng(0)
    batch = spec.example_batch or 1
    tried = [1, *(2**k for k in range(1, int(math.log2(base)) + 1) if 2**k < base)]
    for length in tried:
        try:
            inputs = spec.case(arrays, batch, length, rng)
        except ExportError:
            continue
        if _runs(model, inputs):
            if length == 1:
                return spec
            note = f"shortest {spec.primary} the model accepts: {length} (tried {tried[: tried.index(length) + 1]})"
            return _replace(spec, min_length=length, notes=(*spec.notes, note))
    return _replace(spec, min_length=base, notes=(*spec.notes, f"the model accepts no {spec.primary} below {base}"))


def _replace(spec: InputSpec, **changes: Any) -> InputSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def resize(
    spec: InputSpec, example: Sequence[NDArray[Any]], sizes: dict[str, int], rng: np.random.Generator, mix: bool = False
) -> list[NDArray[Any]]:
    """The example resized so every dynamic axis name has its size in ``sizes`` (see the module docstring).

    Args:
        spec: Names and axes.
        example: Example inputs as numpy arrays.
        sizes: New size per axis name (names missing keep the example's).
        rng: Draws the new lengths (and values, with ``mix``).
        mix: Draw every value of a non-lengths input from the example's values of that input.

    Returns:
        New inputs, in ``spec.names`` order.
    """
    out: list[NDArray[Any]] = []
    batch = sizes.get(spec.batch, spec.example_batch or 1) if spec.batch else (spec.example_batch or 1)
    drawn: dict[str, NDArray[np.int64]] = {}
    for name, array in zip(spec.names, example, strict=True):
        if name == spec.lengths_input or name in spec.other_lengths:
            label = spec.lengths_axes.get(name, spec.primary or "")
            steps = sizes.get(label, spec.sizes.get(label, 1))
            if label not in drawn:
                draw = rng.integers(max(1, min(spec.min_length, steps)), steps + 1, size=batch)
                draw[rng.integers(batch)] = steps
                drawn[label] = np.sort(draw)[::-1].copy() if spec.lengths_sorted else draw
            values = drawn[label] / steps if spec.lengths_relative else drawn[label]
            out.append(np.ascontiguousarray(values.astype(array.dtype)))
            continue
        resized = array
        for axis, axis_name in spec.axes.get(name, {}).items():
            size = sizes.get(axis_name, int(array.shape[axis]))
            resized = np.take(resized, np.arange(size) % resized.shape[axis], axis=axis)
        if mix and resized.size and array.size:
            resized = rng.choice(array.ravel(), size=resized.shape).astype(array.dtype)
        out.append(np.ascontiguousarray(resized))
    return out


def default_grid(spec: InputSpec) -> tuple[GridPoint, ...]:
    """(B, T) points around the example: the shortest accepted length, half to three times the example's length,
    batch sizes 1 to 16; none equal to the example's shape."""
    b0 = spec.example_batch or 1
    t0 = spec.example_length or 1
    low = spec.min_length
    points = [
        (1, low),
        (b0 + 1, max(low, t0 // 2)),
        (4, max(low, math.ceil(1.5 * t0))),
        (1, max(low, 3 * t0)),
        (2, max(low, 3 * t0, min(100, 10 * t0))),
        (16, max(low, t0 + 1)),
    ]
    unique = list(dict.fromkeys(points))
    return tuple(p for p in unique if p != (b0, t0) or len(unique) == 1)


_POINT = re.compile(r"^\s*(\d+)\s*[:x]\s*(\d+(?:\.\d+)?)(x?)\s*$")


def parse_grid(text: str, spec: InputSpec | None = None) -> tuple[GridPoint, ...]:
    """Parse ``B:T`` points separated by commas; ``T`` is a step count, or a multiple of the example's length when it
    ends in ``x`` (``1:0.5x,8:3x,2:400``).

    Raises:
        ExportError: A malformed point, or a multiple without an example length to multiply.
    """
    points = []
    for part in text.split(","):
        match = _POINT.match(part)
        if not match or int(match.group(1)) < 1:
            raise ExportError(f"Grid point {part.strip()!r} is not B:T or B:Nx (e.g. 1:0.5x,8:3x,2:400).")
        batch, value, times = int(match.group(1)), float(match.group(2)), match.group(3)
        if times:
            if spec is None or spec.example_length is None:
                raise ExportError(f"Grid point {part.strip()!r} multiplies a length, but no input has one.")
            length = max(1, round(value * spec.example_length))
        else:
            length = int(value)
        if length < 1:
            raise ExportError(f"Grid point {part.strip()!r}: the length must be >= 1.")
        points.append((batch, length))
    return tuple(points)


def flatten_outputs(value: Any) -> list[torch.Tensor]:
    """The tensors of a (nested) tuple/list/dict output, depth first (a dict's values in its key order), detached
    (a CRF's transition matrix returned as an ``nn.Parameter`` is an output like any other).

    Raises:
        ExportError: Something in it is not a tensor (e.g. ``None`` or a number).
    """
    if isinstance(value, torch.Tensor):
        return [value.detach()]
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
