"""How ``export_module`` gets a graph out of a user's model: the three ways (``lowering``, ``torchscript``, ``dynamo``)
and the stand-ins that make the lowering trace.

While the ``lowering`` way traces, every torch RNN instance computes through ``rnn_nodes.LoweredForward`` and the
packing functions, wherever user code binds them, become traceable versions that carry (padded data, lengths) to
it; on the two TorchScript ways ``len(tensor)`` in the model's own code stays a graph value. Everything is put back
afterwards, also on failure.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import io
import multiprocessing
import re
import signal
import sys
import types
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn
from torch.nn.utils import rnn as rnn_utils

from lstm_onnx.exporter.module_inputs import Axes, InputSpec
from lstm_onnx.exporter.rnn_nodes import LoweredForward, LoweredRNN, PaddedPack, unpack_padded
from lstm_onnx.runtime.errors import ExportError

__all__ = ["EXPORT_TIMEOUT", "FORBIDDEN_OPS", "Flat", "export_graph", "needs_flat"]

# One way to a graph gets this long (torch.onnx's dynamo path takes 10-60 s on a model of the zoo, 2 cores).
EXPORT_TIMEOUT = 900.0

# Ops that the toolkit's own classifier and tagger graphs must not hold (exporter/export.py's check_graph). In a
# user's graph they are only noted: parity decides.
FORBIDDEN_OPS = frozenset({"TopK", "ScatterElements", "ScatterND", "Loop", "Scan", "If", "NonZero"})


def _pack_padded(
    input: torch.Tensor, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PaddedPack:
    """``pack_padded_sequence`` made traceable: nothing is packed, the lengths travel along (sorting is moot)."""
    lens = lengths if isinstance(lengths, torch.Tensor) else torch.as_tensor(lengths)
    # A copy: the lengths tensor carries T (PaddedPack.of), and the caller's tensor must not.
    return PaddedPack.of(input.transpose(0, 1) if batch_first else input, lens.to(torch.int64).clone())


def _pad_packed(
    sequence: Any, batch_first: bool = False, padding_value: float = 0.0, total_length: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pad_packed_sequence`` made traceable: (T', B, F) with ``padding_value`` past each length.

    T' is ``total_length`` when given, else the longest length, as torch's; both are graph values, never the
    example's numbers. A sequence torch itself packed goes to torch's own function.
    """
    unpacked = unpack_padded(sequence)
    if unpacked is None:
        return _ORIGINALS["pad_packed_sequence"](sequence, batch_first, padding_value, total_length)  # type: ignore[no-any-return]
    data, lens = unpacked
    steps = torch.arange(lens.max() if total_length is None else total_length)  # type: ignore[arg-type]
    data = data.index_select(0, steps)
    valid = (steps.view(-1, 1) < lens.view(1, -1)).unsqueeze(-1)  # (T', B, 1)
    data = data.masked_fill(~valid, padding_value)
    return (data.transpose(0, 1) if batch_first else data), lens


_ORIGINALS: dict[str, Any] = {
    "pack_padded_sequence": rnn_utils.pack_padded_sequence,
    "pad_packed_sequence": rnn_utils.pad_packed_sequence,
}
_STAND_INS: dict[str, Any] = {"pack_padded_sequence": _pack_padded, "pad_packed_sequence": _pad_packed}


def _traced_len(obj: Any) -> Any:
    """``len`` that, while tracing, keeps a tensor's first size a graph value (torch's ``Tensor.__len__`` returns the
    example's number and warns). Anything else, and any call outside tracing, is the builtin's."""
    if isinstance(obj, torch.Tensor) and obj.dim() > 0 and torch._C._get_tracing_state() is not None:
        return obj.shape[0]
    return builtins.len(obj)


def _user_namespaces(model: nn.Module, everywhere: bool) -> list[dict[str, Any]]:
    """Namespaces of the modules whose code the model runs (``everywhere``: every loaded module but torch's and this
    package's, for functions bound by name in helper modules the model imports)."""
    if everywhere:
        homes = [m for k, m in list(sys.modules.items()) if not k.startswith(("torch.", "torch", "lstm_onnx."))]
    else:
        names = {
            cls.__module__
            for m in model.modules()
            for cls in type(m).__mro__
            if not cls.__module__.startswith(("torch", "lstm_onnx.", "builtins"))
        }
        homes = [sys.modules[n] for n in names if n in sys.modules]
    lowered = {type(m).__module__ for m in model.modules() if isinstance(m, LoweredRNN)}
    return [vars(h) for h in homes if isinstance(h, types.ModuleType) and h.__name__ not in lowered]


@contextlib.contextmanager
def _patched(model: nn.Module, lower: bool) -> Iterator[list[LoweredForward]]:
    """While tracing: ``len`` kept symbolic in the model's own code; with ``lower``, every torch RNN instance's
    ``forward`` lowered and the packing functions made traceable. Everything is put back on exit."""
    forwards: list[tuple[nn.Module, LoweredForward]] = []
    if lower:
        for name, module in model.named_modules():
            if isinstance(module, nn.RNNBase):
                forwards.append((module, LoweredForward(module, name)))
    patched: list[tuple[dict[str, Any], str, Any]] = []
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        # Inference only: were parameters to require grad, the RNN Function's outputs would too, and the tracer
        # (paused inside the Function) would try to bake them into the graph as constants.
        model.requires_grad_(False)
        for module, forward in forwards:
            module.forward = forward
        for namespace in _user_namespaces(model, everywhere=False):
            if namespace.get("len", builtins.len) is builtins.len:
                patched.append((namespace, "len", namespace.get("len", _MISSING)))
                namespace["len"] = _traced_len
        # User code binds the packing functions by name too (`from torch.nn.utils.rnn import pack_padded_sequence`),
        # in the model's file or a helper it imports: patch every such binding, and torch's own attribute.
        for namespace in [vars(rnn_utils), *_user_namespaces(model, everywhere=True)] if forwards else []:
            for key, value in list(namespace.items()):
                for fn_name, original in _ORIGINALS.items():
                    if value is original:
                        patched.append((namespace, key, value))
                        namespace[key] = _STAND_INS[fn_name]
        yield [f for _, f in forwards]
    finally:
        for param, flag in grads:
            param.requires_grad_(flag)
        for namespace, key, value in reversed(patched):
            if value is _MISSING:
                namespace.pop(key, None)
            else:
                namespace[key] = value
        for module, _ in forwards:
            vars(module).pop("forward", None)


_MISSING = object()
_TORCH_PLEA = " Please feel free to request support or submit a pull request on PyTorch GitHub: https://github.com/pytorch/pytorch/issues"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Flat(nn.Module):
    """Calls the user's module with exactly the example's positional inputs and returns its outputs flattened.

    Only used when needed: torch.onnx's TorchScript path appends the defaults of every further ``forward`` parameter
    (keyword-only ones included) as positional arguments, and cannot return a dict or an ``nn.Parameter`` (a CRF's
    transition matrix). Wrapping prefixes initializer names with ``model.``, so a plain module is exported as itself.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> Any:
        out = [t * 1 if isinstance(t, nn.Parameter) else t for t in _flat_values(self.model(*inputs))]
        return out[0] if len(out) == 1 else tuple(out)


def _flat_values(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flat_values(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flat_values(item)]
    return []


def needs_flat(model: nn.Module, example: Sequence[torch.Tensor], eager_value: Any) -> bool:
    params = inspect.signature(model.forward).parameters
    return (
        len(params) != len(example)
        or not isinstance(eager_value, (torch.Tensor, tuple, list))
        or (isinstance(eager_value, (tuple, list)) and any(isinstance(v, (dict, list)) for v in eager_value))
        or any(isinstance(t, nn.Parameter) for t in _flat_values(eager_value))
    )


def export_graph(
    method: str,
    model: nn.Module,
    target: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    spec: InputSpec,
    names: Sequence[str],
    axes: Axes,
    opset: int,
    *,
    timeout: float = EXPORT_TIMEOUT,
) -> list[str]:
    """``_export_graph`` in a forked child process where the platform forks: torch.onnx's own symbolics can crash the
    interpreter (SIGFPE in the TorchScript LSTM symbolic on stanza's tagger, torch 2.13) or run without end, and
    neither may take the caller down. The child's patches and traces never touch the caller's model.

    Raises:
        ExportError: No graph came out: the child's one line, or how it died (signal, time limit).
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return _export_graph(method, model, target, example, path, spec, names, axes, opset)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        # The parent's OpenMP pool does not survive fork(): a parallel region in the child would wait for threads
        # that do not exist. One thread, so no parallel region.
        torch.set_num_threads(1)
        try:
            result: tuple[str, Any] = (
                "ok",
                _export_graph(method, model, target, example, path, spec, names, axes, opset),
            )
        except ExportError as err:
            result = ("error", str(err))
        # Anything else escaping the export is reported as a line too (the traceback cannot cross processes).
        except BaseException as err:  # noqa: BLE001
            result = ("error", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        send.send(result)

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            raise ExportError(f"{method} did not finish within {timeout:.0f} s")
        kind, value = receive.recv()
    except EOFError:
        process.join()
        code = process.exitcode or 0
        how = signal.Signals(-code).name if code < 0 else f"exit code {code}"
        raise ExportError(f"torch.onnx crashed the exporting process ({how})") from None
    finally:
        process.join(5)
        receive.close()
    if kind == "error":
        raise ExportError(value)
    notes: list[str] = value
    return notes


def _col2im(g: Any, input: Any, output_size: Any, kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> Any:
    """``aten::col2im`` (``F.fold``, asteroid's overlap-add) with an output size computed from the input: torch's own
    symbolic reads the spatial rank from ``output_size``'s static type, which a traced size list has not (a
    TypeError), so the rank comes from ``kernel_size`` and the size list becomes one int64 tensor."""
    from torch.onnx._internal.torchscript_exporter import symbolic_helper as helper

    dilation, padding, stride = (helper._maybe_get_const(v, "is") for v in (dilation, padding, stride))
    rank = len(helper._maybe_get_const(kernel_size, "is"))
    if helper._is_packed_list(output_size):
        parts = [helper._unsqueeze_helper(g, g.op("Cast", v, to_i=7), [0]) for v in helper._unpack_list(output_size)]
        output_size = g.op("Concat", *parts, axis_i=0)
    return g.op(
        "Col2Im",
        input,
        output_size,
        kernel_size,
        dilations_i=list(dilation) or [1] * rank,
        pads_i=list(padding) * 2 or [0, 0] * rank,  # ONNX: every begin, then every end (torch gives one per dim)
        strides_i=list(stride) or [1] * rank,
    )


@contextlib.contextmanager
def _symbolic_fixes(opset: int) -> Iterator[None]:
    """Symbolics that replace torch.onnx's own where those freeze or fail on sizes computed from the input."""
    if opset < 18:
        yield
        return
    torch.onnx.register_custom_op_symbolic("aten::col2im", _col2im, opset)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::col2im", opset)  # type: ignore[attr-defined]


def _export_graph(
    method: str,
    model: nn.Module,
    target: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    spec: InputSpec,
    names: Sequence[str],
    axes: Axes,
    opset: int,
) -> list[str]:
    """Write ``path`` the way ``method`` says; return notes (TracerWarnings, unusual ops).

    Raises:
        ExportError: No graph came out (one line: the exception's type and first line).
    """
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), _symbolic_fixes(opset):
        warnings.simplefilter("always")
        try:
            if method == "dynamo":
                # Dim.AUTO on every dynamic axis: torch.export finds the relations between them itself, and what it
                # specializes shows up as a parity failure at the grid's other sizes.
                shapes = [{a: torch.export.Dim.AUTO for a in spec.axes.get(n, {})} for n in spec.names]
                params = list(inspect.signature(target.forward).parameters)
                dynamic = (
                    {params[0]: tuple(shapes)} if isinstance(target, Flat) else dict(zip(params, shapes, strict=False))
                )
                torch.onnx.export(
                    target,
                    example,
                    str(path),
                    dynamo=True,
                    opset_version=max(opset, 18),
                    input_names=list(spec.names),
                    output_names=list(names),
                    dynamic_shapes=dynamic,
                    external_data=False,
                    optimize=True,
                    verbose=False,
                )
            else:
                with _patched(model, lower=method == "lowering") as lowered:
                    declared = sum(m.lowered_layers for m in model.modules() if isinstance(m, LoweredRNN))
                    if method == "lowering" and not lowered and not declared:
                        raise ExportError("no nn.LSTM/nn.GRU/nn.RNN to lower")
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
            root: BaseException = err
            while root.__cause__ is not None and type(root).__module__.startswith("torch.onnx"):
                root = root.__cause__  # torch.onnx wraps the real failure in a generic "step 1/3" error
            text = _ANSI.sub("", str(root)).split("  [Caused by")[0].replace(_TORCH_PLEA, "").strip()
            first = text.splitlines()[0] if text else ""
            raise ExportError(f"{type(root).__name__}: {first[:300]}") from err
    try:
        graph = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(graph)
    except Exception as err:  # noqa: BLE001 - any failure to read back is a broken graph
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ExportError(f"the graph is invalid: {first}") from err
    if method == "lowering":
        expected = declared + sum(f.num_layers * f.calls for f in lowered)
        found = sum(1 for n in graph.graph.node if n.op_type in ("LSTM", "GRU", "RNN"))
        if found != expected:
            raise ExportError(
                f"Expected {expected} ONNX LSTM/GRU/RNN node(s) (one per layer and call), found {found}: an RNN was "
                "traced in a form the lowering does not recognise."
            )
    notes: list[str] = []
    tracer_warning: type[Warning] = torch.jit.TracerWarning  # type: ignore[attr-defined]
    seen = {
        f"{str(w.message).splitlines()[0][:160]} ({Path(w.filename).name}:{w.lineno})"
        for w in caught
        if issubclass(w.category, tracer_warning)
    }
    notes.extend(f"TracerWarning: {m}" for m in sorted(seen)[:3])
    ops = sorted({n.op_type for n in graph.graph.node} & FORBIDDEN_OPS)
    if ops:
        notes.append(f"graph holds {', '.join(ops)} (judged by parity, not refused)")
    return notes
