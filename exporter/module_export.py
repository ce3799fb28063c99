"""export_module: anyone's PyTorch module built around ``nn.LSTM``/``nn.GRU`` → ``model.onnx``, or a one-line refusal.

While ``torch.onnx.export`` traces (TorchScript, ``dynamo=False``), every ``nn.LSTM``/``nn.GRU`` in the module tree
is swapped for an ``ExportableRNN`` (exporter/rnn_nodes.py) and ``pack_padded_sequence``/``pad_packed_sequence``
for versions that carry (padded data, lengths) through to it, so each RNN becomes ONNX ``LSTM``/``GRU`` nodes fed
``sequence_lens``. Everything is put back afterwards, also on failure. A ``LoweredRNN`` (a module whose forward emits
those nodes itself, like the trainer's export twins in exporter/onnx_module.py) counts as an RNN and is left as is.

What cannot be exported faithfully is refused, never exported wrong: RNN cells (a Python loop unrolled to the
example's length), ``proj_size``, ``nn.RNN``, state kept between calls, TracerWarnings (a data-dependent Python
branch or a size turned into a Python number), and a graph that disagrees with the eager model at a second shape.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.nn.utils import rnn as rnn_utils

from lstm_onnx.exporter.module_inputs import (
    BATCH,
    SEQUENCE,
    Axes,
    InputSpec,
    flatten_outputs,
    infer_spec,
    output_names_of,
    resize,
    run_module,
)
from lstm_onnx.exporter.rnn_nodes import ExportableRNN, LoweredRNN, PaddedPack
from lstm_onnx.runtime.errors import ExportError

__all__ = ["DEFAULT_OPSET", "FORBIDDEN_OPS", "MIN_OPSET", "ModuleExport", "check_opset", "export_module"]

# ONNX LSTM/GRU have had layout and sequence_lens since opset 14; 17 is the lowest opset every ORT >= 1.12 serves
# and the one ORT's quantization tools handle best.
DEFAULT_OPSET = 17
MIN_OPSET = 14

# Ops that betray sort/unsort, per-timestep or data-dependent machinery around an RNN instead of one node per layer.
FORBIDDEN_OPS = frozenset({"TopK", "ScatterElements", "ScatterND", "Loop", "Scan", "If", "NonZero"})
# A second shape must match the eager model this closely before the export is accepted (verify measures properly).
_SHAPE_CHECK_ATOL = 1e-4


@dataclass(frozen=True)
class ModuleExport:
    """What ``export_module`` wrote.

    Attributes:
        path: The ``.onnx`` file.
        spec: Input names and dynamic axes (inferred ones included).
        output_names: ONNX output names, in order.
        output_axes: Dynamic axes of every output.
        rnn_nodes: ``(module name, ONNX op, layers)`` of every RNN exported.
        opset: ONNX opset.
    """

    path: Path
    spec: InputSpec
    output_names: tuple[str, ...]
    output_axes: Axes
    rnn_nodes: tuple[tuple[str, str, int], ...]
    opset: int


def _pack_padded(
    input: torch.Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PaddedPack:
    """``pack_padded_sequence`` made traceable: nothing is packed, the lengths travel along (sorting is moot)."""
    lens = lengths if isinstance(lengths, torch.Tensor) else torch.as_tensor(lengths)
    return PaddedPack(input.transpose(0, 1) if batch_first else input, lens.to(torch.int64))  # (T, B, F)


def _pad_packed(
    sequence: PaddedPack, batch_first: bool = False, padding_value: float = 0.0, total_length: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pad_packed_sequence`` made traceable: (T', B, F) with ``padding_value`` past each length.

    T' is ``total_length`` when given, else the longest length, as torch's; both are graph values, never the
    example's numbers (``total_length`` above the padded input's width is not supported).
    """
    if not isinstance(sequence, PaddedPack):
        raise ExportError(f"pad_packed_sequence got a {type(sequence).__name__}; expected the RNN's packed output.")
    data, lens = sequence.padded, sequence.lengths
    steps = torch.arange(lens.max() if total_length is None else total_length)  # type: ignore[arg-type]
    data = data.index_select(0, steps)
    valid = (steps.view(-1, 1) < lens.view(1, -1)).unsqueeze(-1)  # (T', B, 1)
    data = data.masked_fill(~valid, padding_value)
    return (data.transpose(0, 1) if batch_first else data), lens


def check_opset(opset: int) -> None:
    """Refuse an opset older than ``MIN_OPSET``.

    Raises:
        ExportError: Names the opset and the minimum.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"Opset {opset} is too old: ONNX LSTM/GRU need layout/sequence_lens (opset >= {MIN_OPSET}).")


# (module name, ONNX op, layers) of one RNN in the model: what the graph must hold for it.
RNNRecord = tuple[str, str, int]


def _refuse_unexportable(model: nn.Module) -> tuple[list[tuple[str, nn.LSTM | nn.GRU]], list[RNNRecord]]:
    """The RNNs to swap and the record of every RNN (lowered ones included), after refusing modules that cannot be
    exported faithfully."""
    rnns = []
    records: list[RNNRecord] = []
    for name, module in model.named_modules():
        label = f"{name or '<root>'} ({type(module).__name__})"
        if isinstance(module, LoweredRNN):
            if module.lowered_op not in ("LSTM", "GRU") or module.lowered_layers < 1:
                raise ExportError(
                    f"Cannot export {label}: a LoweredRNN must emit >= 1 LSTM/GRU node, it declares "
                    f"{module.lowered_layers} {module.lowered_op!r}."
                )
            records.append((name or "<root>", module.lowered_op, module.lowered_layers))
        if isinstance(module, (nn.LSTMCell, nn.GRUCell, nn.RNNCell)):
            raise ExportError(
                f"Cannot export {label}: an RNN cell stepped by a Python loop unrolls to the example's length. "
                "Use nn.LSTM/nn.GRU over the whole sequence."
            )
        if isinstance(module, nn.LSTM) and module.proj_size > 0:
            raise ExportError(f"Cannot export {label}: proj_size={module.proj_size} has no ONNX LSTM equivalent.")
        if isinstance(module, (nn.LSTM, nn.GRU)):
            rnns.append((name, module))
            records.append((name, type(module).__name__, module.num_layers))
        elif isinstance(module, nn.RNNBase):
            raise ExportError(f"Cannot export {label}: only nn.LSTM and nn.GRU are supported.")
    if not records:
        raise ExportError(f"{type(model).__name__} holds no nn.LSTM or nn.GRU; export_module exports RNN models.")
    return rnns, records


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor a module keeps besides its parameters: buffers and plain tensor attributes, copied."""
    state = {
        f"{n}.{k}" if n else k: b.detach().clone()
        for n, m in model.named_modules()
        for k, b in m._buffers.items()
        if b is not None
    }
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                state[f"{name}.{key}" if name else key] = value.detach().clone()
    return state


def _refuse_stateful(model: nn.Module, example: Sequence[torch.Tensor]) -> Any:
    """``forward``'s result for the example, after refusing a model that keeps state between calls."""
    before = _state(model)
    value = run_module(model, example, "the example inputs")
    first = flatten_outputs(value)
    second = flatten_outputs(run_module(model, example, "the example inputs (a second call)"))
    after = _state(model)
    changed = sorted(
        k
        for k in before.keys() | after.keys()
        if k not in before or k not in after or not torch.equal(before[k], after[k])
    )
    if changed or any(not torch.equal(a, b) for a, b in zip(first, second, strict=True)):
        where = f" (changed: {', '.join(changed[:3])})" if changed else ""
        raise ExportError(
            f"Cannot export {type(model).__name__}: it carries state between calls{where}; two calls on the same "
            "input differ. Pass the state as an input instead."
        )
    return value


@contextlib.contextmanager
def _exportable(model: nn.Module, rnns: list[tuple[str, nn.LSTM | nn.GRU]]) -> Iterator[list[ExportableRNN]]:
    """Swap RNNs and the packing functions for traceable stand-ins; put everything back on exit."""
    swaps: list[tuple[Any, str, Any]] = []
    wrappers = []
    for name, rnn in rnns:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        wrapper = ExportableRNN(rnn, name)
        wrappers.append(wrapper)
        swaps.append((parent, attr, rnn))
    originals = {
        "pack_padded_sequence": rnn_utils.pack_padded_sequence,
        "pad_packed_sequence": rnn_utils.pad_packed_sequence,
    }
    stand_ins = {"pack_padded_sequence": _pack_padded, "pad_packed_sequence": _pad_packed}
    # User code often binds the functions by name (`from torch.nn.utils.rnn import pack_padded_sequence as pack`),
    # in the model's file or in a helper module it imports: patch every such binding in every loaded module, as well
    # as torch's own attribute. Only when there are RNNs to swap (nothing else takes the stand-ins' output), and never
    # in torch's other modules, in this package (its eager kernels pack for real) or in a lowered module's home.
    lowered_homes = {type(m).__module__ for m in model.modules() if isinstance(m, LoweredRNN)}
    namespaces = [vars(rnn_utils)] if rnns else []
    for module_name, home in list(sys.modules.items()) if rnns else ():
        if (
            isinstance(home, types.ModuleType)
            and not module_name.startswith(("torch.", "lstm_onnx."))
            and module_name not in lowered_homes
        ):
            namespaces.append(vars(home))
    patched: list[tuple[dict[str, Any], str, Any]] = []
    # Inference only: were parameters to require grad, the RNN Function's outputs would too, and the tracer (paused
    # inside the Function) would try to bake them into the graph as constants.
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.requires_grad_(False)
        for (parent, attr, _), wrapper in zip(swaps, wrappers, strict=True):
            setattr(parent, attr, wrapper)
        for namespace in namespaces:
            for key, value in list(namespace.items()):
                for fn_name, original in originals.items():
                    if value is original:
                        patched.append((namespace, key, value))
                        namespace[key] = stand_ins[fn_name]
        yield wrappers
    finally:
        for param, flag in grads:
            param.requires_grad_(flag)
        for namespace, key, value in patched:
            namespace[key] = value
        for parent, attr, rnn in swaps:
            setattr(parent, attr, rnn)


def _output_axes(
    model: nn.Module, spec: InputSpec, example: Sequence[torch.Tensor], names: Sequence[str]
) -> tuple[Axes, list[torch.Tensor], list[np.ndarray[Any, Any]]]:
    """Output axes found by running the eager model at a second shape: a dim that follows B is the batch axis, any
    other dim that moves is the sequence axis. Also returns the second shape's inputs and eager outputs."""
    arrays = [t.numpy() for t in example]
    base_b = spec.batch_size(arrays) or 1
    steps = max(
        (
            a.shape[ax]
            for n, a in zip(spec.names, arrays, strict=True)
            for ax, lbl in spec.axes.get(n, {}).items()
            if lbl == SEQUENCE
        ),
        default=1,
    )
    second = resize(spec, arrays, base_b + 3, 2 * steps + 1, np.random.default_rng(0))
    first_out = flatten_outputs(run_module(model, example, "the example inputs"))
    second_out = flatten_outputs(
        run_module(model, [torch.from_numpy(a) for a in second], "inputs resized to another batch size and length")
    )
    axes: Axes = {}
    for name, a, b in zip(names, first_out, second_out, strict=True):
        moved = {
            d: (BATCH if b.shape[d] == base_b + 3 and spec.batch_size(arrays) is not None else SEQUENCE)
            for d in range(a.dim())
            if a.shape[d] != b.shape[d]
        }
        if moved:
            axes[name] = moved
    return axes, [torch.from_numpy(a) for a in second], [t.numpy() for t in second_out]


def _check_graph(path: Path, records: list[RNNRecord], expected: int, packed: bool, lowered: int) -> None:
    """Checker, no forbidden ops, ``expected`` RNN nodes (one per layer and call); every node has ``sequence_lens``
    when an RNN was fed a packed sequence, and at least ``lowered`` nodes (a ``LoweredRNN``'s layers) have it in any
    case."""
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"The exported graph is invalid: {err}") from err
    forbidden = sorted({n.op_type for n in model.graph.node} & FORBIDDEN_OPS)
    if forbidden:
        raise ExportError(f"The graph holds {forbidden}: sort/unsort, loop or data-dependent machinery around an RNN.")
    nodes = [n for n in model.graph.node if n.op_type in ("LSTM", "GRU")]
    if len(nodes) != expected:
        names = ", ".join(n for n, _, _ in records)
        raise ExportError(
            f"Expected {expected} ONNX LSTM/GRU node(s) for {names} (one per layer and call), found {len(nodes)}: "
            "an RNN was traced in a form the exporter does not recognise."
        )
    with_lengths = sum(1 for n in nodes if len(n.input) >= 5 and n.input[4])
    if (packed and with_lengths < len(nodes)) or with_lengths < lowered:
        raise ExportError("An RNN fed a packed sequence lost its lengths (no sequence_lens); padding would leak in.")


def export_module(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: Path,
    *,
    dynamic_axes: Axes | None = None,
    output_names: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
) -> ModuleExport:
    """Export a user's RNN model to ONNX, or refuse in one line.

    Args:
        model: Any ``nn.Module`` using ``nn.LSTM``/``nn.GRU`` or holding a ``LoweredRNN``; put in eval mode (a
            warning says so when it was training) and otherwise left unchanged. ``forward`` may return a tensor or
            a (nested) tuple, list or dict of tensors, and may take further parameters with defaults.
        example_inputs: Tensors in ``forward``'s order, e.g. ids int64 (B, T) and lengths int64 (B).
        path: Target ``.onnx`` file.
        dynamic_axes: ``torch.onnx.export``-style axes keyed by ``forward``'s parameter names (inputs and, if
            wanted, outputs); inferred when ``None`` (see ``module_inputs.infer_spec``).
        output_names: ONNX output names; default ``output``, or ``output_0``, ``output_1``, ... for a tuple, or a
            dict's keys.
        opset: ONNX opset (>= 14, for LSTM/GRU ``layout`` and ``sequence_lens``).

    Returns:
        What was written, with the inferred axes.

    Raises:
        ExportError: The model cannot be exported faithfully (names the module and the reason), or the graph fails
            its checks.
    """
    check_opset(opset)
    if not isinstance(model, nn.Module):
        raise ExportError(
            f"The model is a {type(model).__name__}, not a torch.nn.Module; export_module exports modules."
        )
    example = tuple(example_inputs)
    if model.training:
        warnings.warn(
            f"{type(model).__name__} was in training mode; it is exported (and left) in eval mode: dropout off, "
            "batch-norm statistics frozen.",
            stacklevel=2,
        )
    model.eval()
    rnns, records = _refuse_unexportable(model)
    spec = infer_spec(model, example, dynamic_axes)
    eager_value = _refuse_stateful(model, example)
    eager = flatten_outputs(eager_value)
    names = tuple(output_names) if output_names else output_names_of(eager_value)
    if len(names) != len(eager) or len(set(names)) != len(names):
        raise ExportError(f"Output names {list(names)} do not name {len(eager)} outputs once each.")
    unknown = sorted(set(dynamic_axes or {}) - set(spec.names) - set(names))
    if unknown:
        raise ExportError(
            f"dynamic_axes names {unknown}, which is neither an input ({', '.join(spec.names)}) nor an output "
            f"({', '.join(names)})."
        )
    out_axes, second_in, second_out = _output_axes(model, spec, example, names)
    if dynamic_axes is not None:
        out_axes = {**out_axes, **{k: dict(v) for k, v in dynamic_axes.items() if k in names}}
    try:
        wrappers = _trace(model, example, eager_value, path, spec, names, {**spec.axes, **out_axes}, rnns, opset)
        lowered = sum(layers for _, _, layers in records) - sum(r.num_layers for _, r in rnns)
        expected = lowered + sum(w.num_layers * w.calls for w in wrappers)
        _check_graph(path, records, expected, any(w.saw_packed for w in wrappers), lowered)
        _check_second_shape(path, spec, second_in, second_out)
    except ExportError:
        # Never leave a refused graph where a caller could pick it up.
        path.unlink(missing_ok=True)
        raise
    return ModuleExport(path, spec, names, out_axes, tuple(records), opset)


class _Flat(nn.Module):
    """Calls the user's module with exactly the example's positional inputs and returns its outputs flattened.

    Only used when needed: torch.onnx's TorchScript path appends the defaults of every further ``forward`` parameter
    (keyword-only ones included) as positional arguments, and cannot return a dict. Wrapping prefixes initializer
    names with ``model.``, so a plain module is exported as itself.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> Any:
        out = flatten_outputs(self.model(*inputs))
        return out[0] if len(out) == 1 else tuple(out)


def _needs_flat(model: nn.Module, example: Sequence[torch.Tensor], eager_value: Any) -> bool:
    params = inspect.signature(model.forward).parameters
    return (
        len(params) != len(example)
        or not isinstance(eager_value, (torch.Tensor, tuple, list))
        or (isinstance(eager_value, (tuple, list)) and any(isinstance(v, dict) for v in eager_value))
    )


def _trace(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    eager_value: Any,
    path: Path,
    spec: InputSpec,
    names: Sequence[str],
    axes: Axes,
    rnns: list[tuple[str, nn.LSTM | nn.GRU]],
    opset: int,
) -> list[ExportableRNN]:
    """``torch.onnx.export`` with the RNNs swapped; any failure or TracerWarning becomes one ``ExportError`` line.

    Returns:
        The stand-ins used (their call counts and whether they were fed a packed sequence).
    """
    # eval(): torch.onnx.export puts the exported module back in its own mode afterwards, recursively; a fresh
    # wrapper in training mode would leave the user's model training (dropout on) for verify.
    target = _Flat(model).eval() if _needs_flat(model, example, eager_value) else model
    with warnings.catch_warnings(record=True) as caught, _exportable(model, rnns) as wrappers:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                target,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=list(spec.names),
                output_names=list(names),
                dynamic_axes=axes,
                do_constant_folding=True,
                keep_initializers_as_inputs=False,
            )
        except ExportError:
            raise
        # The eager model ran on this input already, so whatever fails here failed in the export machinery (or in
        # user code the stand-ins reached); one line names it, the traceback stays chained.
        except Exception as err:  # noqa: BLE001
            first = str(err).splitlines()[0] if str(err) else ""
            raise ExportError(
                f"torch.onnx.export failed for {type(model).__name__}: {type(err).__name__}: {first}"
            ) from err
    tracer_warning: type[Warning] = torch.jit.TracerWarning  # type: ignore[attr-defined]
    tracer = [w for w in caught if issubclass(w.category, tracer_warning)]
    if tracer:
        raise ExportError(
            f"Cannot export {type(model).__name__}: tracing hit Python that depends on the data or freezes a size "
            f"({str(tracer[0].message).splitlines()[0]} at {Path(tracer[0].filename).name}:{tracer[0].lineno})."
        )
    return wrappers


def _check_second_shape(
    path: Path, spec: InputSpec, inputs: list[torch.Tensor], want: list[np.ndarray[Any, Any]]
) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # an input the model never reads is dropped from the graph
    feed = {n: t.numpy() for n, t in zip(spec.names, inputs, strict=True) if n in wanted}
    shape = {n: list(a.shape) for n, a in feed.items()}
    try:
        got = session.run(None, feed)
    except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument) as err:
        raise ExportError(
            f"The graph fails at a shape the export did not see ({shape}): a size was frozen into it. "
            f"{str(err).splitlines()[0]}"
        ) from err
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape or not np.allclose(g, w, atol=_SHAPE_CHECK_ATOL, rtol=1e-3):
            raise ExportError(
                f"The graph disagrees with the eager model at a shape the export did not see ({shape}), "
                f"output {index}: a data-dependent Python branch or a size frozen into the graph."
            )
