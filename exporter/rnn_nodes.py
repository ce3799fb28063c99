"""Any ``nn.LSTM``/``nn.GRU``/``nn.RNN`` as ONNX ``LSTM``/``GRU``/``RNN`` nodes with ``sequence_lens`` (module export).

While ``torch.onnx.export`` traces (TorchScript, ``dynamo=False``; see exporter/onnx_module.py for the upstream
issues behind that choice), the ``forward`` of every RNN *instance* is replaced by ``LoweredForward``: the module
stays the user's own ``nn.LSTM`` (its class, weights, ``flatten_parameters``, ``isinstance`` all answer as before),
only its computation is routed through ``_RNNLayer``, a ``torch.autograd.Function`` whose eager body is torch's own
packed kernel and whose ``symbolic`` is one ONNX node per layer:

- ``sequence_lens`` comes from the lengths a ``PaddedPack`` carries (a real ``PackedSequence`` subclass holding the
  padded, time-major rows; made by the traceable ``pack_padded_sequence`` of module_trace's patch); no
  sort/unsort, no scatter, no Loop.
- GRU nodes set ``linear_before_reset=1``: torch applies the reset gate after the recurrent matmul.
- ``initial_h``/``initial_c`` are fed only when the caller passed them, so a zero state defaults to zeros of the
  *runtime* batch (onnxruntime#11830), and a state computed from the input stays a graph value.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstm_onnx.runtime.errors import ExportError

__all__ = [
    "LoweredForward",
    "LoweredRNN",
    "PaddedPack",
    "is_padded_pack",
    "lstm_layer",
    "unpack_padded",
    "onnx_weights",
    "register_onnx_weights",
    "rnn_kind",
]


# The attribute a PaddedPack's lengths tensor carries: the padded length T (a traced value while tracing). It lives
# on the tensor object itself, so a PackedSequence user code re-builds from ``x.batch_sizes`` is still recognised.
_STEPS = "_lstm_onnx_padded_steps"


class PaddedPack(PackedSequence):
    """A ``PackedSequence`` whose rows stay padded so it traces: ``data`` is float (T*B, F), the padded time-major
    (T, B, F) rows flattened (rows past an item's length undefined), and ``batch_sizes`` is the true lengths, int64
    (B), carrying T.

    It *is* a ``PackedSequence`` with (N, F) data, as torch's: ``isinstance`` holds, ``.to()``/``.float()`` work,
    ``torch.cat([a.data, b.data], 1)`` joins features, and user code that re-wraps it,
    ``PackedSequence(f(x.data), x.batch_sizes)``, keeps the layout (row-wise ``f`` stays exact on padded rows).
    Only readers that count packed rows (``data.shape[0]`` as a token count) would see T*B instead.
    """

    def __new__(
        cls,
        data: torch.Tensor,
        batch_sizes: torch.Tensor | None = None,
        sorted_indices: torch.Tensor | None = None,
        unsorted_indices: torch.Tensor | None = None,
    ) -> PaddedPack:
        return tuple.__new__(cls, (data, batch_sizes, sorted_indices, unsorted_indices))

    @classmethod
    def of(cls, padded: torch.Tensor, lengths: torch.Tensor) -> PaddedPack:
        """Pack (T, B, F) time-major rows with their int64 (B) lengths."""
        setattr(lengths, _STEPS, padded.shape[0])
        return cls(padded.reshape(-1, padded.shape[2]), lengths)


def unpack_padded(value: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(padded float (T, B, F), lengths int64 (B)) of a ``PaddedPack`` or of a ``PackedSequence`` user code re-built
    from one; ``None`` for anything else (a sequence torch itself packed)."""
    if not isinstance(value, PackedSequence) or value.batch_sizes is None:
        return None
    steps = getattr(value.batch_sizes, _STEPS, None)
    if steps is None or value.data.dim() != 2:
        return None
    return value.data.reshape(steps, value.batch_sizes.shape[0], -1), value.batch_sizes


def is_padded_pack(value: Any) -> bool:
    """A ``PaddedPack``, or a ``PackedSequence`` user code re-built from one."""
    return unpack_padded(value) is not None


class LoweredRNN(nn.Module):
    """Base of a module whose RNN layers are already lowered: its ``forward`` itself emits ONNX ``LSTM``/``GRU`` nodes
    fed ``sequence_lens`` (through ``lstm_layer``), so ``export_module`` has nothing to patch in it.

    ``export_module`` counts it as an RNN for its refusal check and expects exactly ``lowered_layers`` nodes of type
    ``lowered_op``, each with ``sequence_lens``, in the graph.

    Attributes:
        lowered_op: ``"LSTM"`` or ``"GRU"``.
        lowered_layers: ONNX RNN nodes one ``forward`` emits.
    """

    lowered_op: str = "LSTM"
    lowered_layers: int = 0


# Gate blocks in ONNX order as indices into torch's: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) -> (z, r, h);
# a plain RNN has one block.
_ONNX_FROM_TORCH = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def rnn_kind(rnn: nn.RNNBase) -> str:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"`` (tanh or relu) for a torch RNN module."""
    return "LSTM" if isinstance(rnn, nn.LSTM) else "GRU" if isinstance(rnn, nn.GRU) else "RNN"


def _onnx_gates(weight: torch.Tensor, kind: str, inverse: bool = False) -> torch.Tensor:
    """Reorder stacked gate rows from torch's order to ONNX's (``inverse``: back from ONNX's to torch's)."""
    order = _ONNX_FROM_TORCH[kind]
    if inverse:
        order = tuple(order.index(k) for k in range(len(order)))
    blocks = weight.chunk(len(order), dim=0)
    return torch.cat([blocks[k] for k in order], dim=0)


def onnx_weights(rnn: nn.RNNBase, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer's weights in ONNX layout.

    Args:
        rnn: The torch module (``bias=False`` gives zero biases).
        layer: Layer index.

    Returns:
        W float (D, G*H, In), R float (D, G*H, H), B float (D, 2*G*H); G = 4 (LSTM), 3 (GRU) or 1 (RNN).
    """
    kind = rnn_kind(rnn)
    ws, rs, bs = [], [], []
    for suffix in ["", "_reverse"][: 2 if rnn.bidirectional else 1]:
        w = getattr(rnn, f"weight_ih_l{layer}{suffix}").detach()
        r = getattr(rnn, f"weight_hh_l{layer}{suffix}").detach()
        if rnn.bias:
            wb = getattr(rnn, f"bias_ih_l{layer}{suffix}").detach()
            rb = getattr(rnn, f"bias_hh_l{layer}{suffix}").detach()
        else:
            wb = rb = torch.zeros(w.shape[0], dtype=w.dtype)
        ws.append(_onnx_gates(w, kind))
        rs.append(_onnx_gates(r, kind))
        bs.append(torch.cat([_onnx_gates(wb, kind), _onnx_gates(rb, kind)]))
    return torch.stack(ws).contiguous(), torch.stack(rs).contiguous(), torch.stack(bs).contiguous()


def _eager_layer(
    kind: str,
    x: torch.Tensor,
    seq_lens: torch.Tensor | None,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None,
    c0: torch.Tensor | None,
    nonlinearity: str = "tanh",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ONNX ``LSTM``/``GRU``/``RNN`` semantics (layout 0) computed by torch's packed kernel.

    Args:
        kind: ``"LSTM"``, ``"GRU"`` or ``"RNN"``.
        x: float (T, B, In).
        seq_lens: int (B) lengths, or ``None`` for every row running all T steps.
        w, r, b: ONNX-layout weights (see ``onnx_weights``).
        h0, c0: float (D, B, H) initial states, or ``None`` for zeros.
        nonlinearity: A plain RNN's ``tanh`` or ``relu``.

    Returns:
        Y float (T, D, B, H) zero past each length, Y_h float (D, B, H), Y_c (LSTM's final cell, else Y_h).
    """
    d, hidden = w.shape[0], r.shape[2]
    rnn: nn.RNNBase
    if kind == "RNN":
        rnn = nn.RNN(x.shape[2], hidden, num_layers=1, bidirectional=d == 2, nonlinearity=nonlinearity)
    else:
        rnn = (nn.LSTM if kind == "LSTM" else nn.GRU)(x.shape[2], hidden, num_layers=1, bidirectional=d == 2)
    rnn = rnn.to(x.dtype)
    with torch.no_grad():
        for k, suffix in enumerate(["", "_reverse"][:d]):
            getattr(rnn, f"weight_ih_l0{suffix}").copy_(_onnx_gates(w[k], kind, inverse=True))
            getattr(rnn, f"weight_hh_l0{suffix}").copy_(_onnx_gates(r[k], kind, inverse=True))
            wb, rb = b[k].chunk(2)
            getattr(rnn, f"bias_ih_l0{suffix}").copy_(_onnx_gates(wb, kind, inverse=True))
            getattr(rnn, f"bias_hh_l0{suffix}").copy_(_onnx_gates(rb, kind, inverse=True))
        steps, batch = x.shape[0], x.shape[1]
        lens = torch.full((batch,), steps) if seq_lens is None else seq_lens.cpu().long()
        packed = pack_padded_sequence(x, lens, enforce_sorted=False)
        zeros = torch.zeros(d, batch, hidden, dtype=x.dtype)
        h = zeros if h0 is None else h0
        state: Any = (h, zeros if c0 is None else c0) if kind == "LSTM" else h
        out, final = rnn(packed, state)
        y, _ = pad_packed_sequence(out, total_length=steps)  # (T, B, D*H), zero padded
        h_n, c_n = final if kind == "LSTM" else (final, final)
    return y.view(steps, batch, d, hidden).permute(0, 2, 1, 3).contiguous(), h_n, c_n


def _absent(g: Any) -> Any:
    """An omitted optional ONNX input (what torch.onnx's own RNN symbolics emit)."""
    node = g.op("prim::Constant")
    node.setType(torch._C.OptionalType.ofTensor())
    return node


class _RNNLayer(torch.autograd.Function):
    """One RNN layer: torch's kernel in eager mode, one ONNX ``LSTM``/``GRU``/``RNN`` node on export.

    ``kind`` is ``"LSTM"``, ``"GRU"``, ``"RNN:tanh"`` or ``"RNN:relu"``.

    Optional inputs travel as flags plus only the tensors present: a ``None`` argument breaks TorchScript's graph
    passes (an internal assert in dead-code elimination, torch 2.13).
    """

    @staticmethod
    def forward(
        ctx: Any, kind: str, present: tuple[bool, bool, bool], x: torch.Tensor, *tensors: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        w, r, b, *rest = tensors
        seq_lens, h0, c0 = (rest.pop(0) if flag else None for flag in present)
        kind, _, nonlinearity = kind.partition(":")
        # The tracer replaces this body by the symbolic anyway; tracing through it would only raise TracerWarnings.
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # type: ignore[attr-defined]
        try:
            y, y_h, y_c = _eager_layer(kind, x, seq_lens, w, r, b, h0, c0, nonlinearity or "tanh")
            # GRU has no cell state: one output fewer (a value returned twice breaks TorchScript's graph passes).
            return (y, y_h, y_c) if kind == "LSTM" else (y, y_h)
        finally:
            torch._C._set_tracing_state(state)  # type: ignore[attr-defined]

    @staticmethod
    def symbolic(
        g: Any, kind: str, present: tuple[bool, bool, bool], x: Any, *tensors: Any
    ) -> tuple[Any, ...]:  # pragma: no cover - exercised through torch.onnx.export
        w, r, b, *rest = tensors
        seq_lens, h0, c0 = (rest.pop(0) if flag else None for flag in present)
        kind, _, nonlinearity = kind.partition(":")
        hidden = w.type().sizes()[1] // len(_ONNX_FROM_TORCH[kind])
        directions = w.type().sizes()[0]
        if seq_lens is None:
            lens = _absent(g)
        elif seq_lens.type().scalarType() == "Int":  # already int32 (the export twins cast once, before layer 0)
            lens = seq_lens
        else:
            lens = g.op("Cast", seq_lens, to_i=torch.onnx.TensorProtoDataType.INT32)
        inputs = [x, w, r, b, lens, _absent(g) if h0 is None else h0]
        attrs: dict[str, Any] = {
            "hidden_size_i": hidden,
            "direction_s": "bidirectional" if directions == 2 else "forward",
            "layout_i": 0,
        }
        if kind == "LSTM":
            inputs.append(_absent(g) if c0 is None else c0)
            y, y_h, y_c = g.op("LSTM", *inputs, outputs=3, **attrs)
            return y, y_h, y_c
        if kind == "RNN":
            activation = "Relu" if nonlinearity == "relu" else "Tanh"
            y, y_h = g.op("RNN", *inputs, outputs=2, activations_s=[activation] * directions, **attrs)
            return y, y_h
        y, y_h = g.op("GRU", *inputs, outputs=2, linear_before_reset_i=1, **attrs)
        return y, y_h


class LoweredForward:
    """The ``forward`` an RNN instance gets while it is exported: takes what ``nn.LSTM``/``nn.GRU``/``nn.RNN`` take and
    returns what they return, every layer as one ONNX node.

    Accepts a ``PaddedPack`` (what ``pack_padded_sequence`` becomes during export, or a ``PackedSequence`` re-built
    from one), a padded (B, T, F) or (T, B, F) tensor, or an unbatched (T, F) tensor; optional ``hx`` (LSTM:
    ``(h0, c0)``) of shape (L*D, B, H).

    Args:
        rnn: The module it computes for (its weights are read once, in ONNX layout; the module is not modified).
        name: Its dotted name in the model (for messages).

    Raises:
        ExportError: At construction for what has no ONNX equivalent (``proj_size``); at call time for a
            ``PackedSequence`` packed where the export could not reach (its rows are already packed).
    """

    def __init__(self, rnn: nn.RNNBase, name: str) -> None:
        self.kind = rnn_kind(rnn)
        self.name = name
        label = f"{name or '<root>'} ({type(rnn).__name__})"
        if isinstance(rnn, nn.LSTM) and rnn.proj_size > 0:
            raise ExportError(f"{label}: proj_size={rnn.proj_size} has no ONNX LSTM equivalent.")
        self.op = f"RNN:{rnn.nonlinearity}" if self.kind == "RNN" else self.kind
        self.batch_first = rnn.batch_first
        self.num_layers = rnn.num_layers
        self.directions = 2 if rnn.bidirectional else 1
        self.saw_packed = False  # set when fed a PaddedPack: its nodes must then carry sequence_lens
        self.calls = 0  # calls while tracing: each emits num_layers nodes (a shared encoder runs twice)
        self.weights = [tuple(t.detach().clone() for t in onnx_weights(rnn, layer)) for layer in range(rnn.num_layers)]

    def __call__(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        """Run every layer; see the class docstring for the accepted inputs.

        Returns:
            ``(output, h_n)`` (GRU, RNN) or ``(output, (h_n, c_n))`` (LSTM), shaped as torch returns them;
            ``output`` is a ``PaddedPack`` when the input was a packed sequence.
        """
        x = input
        unpacked = unpack_padded(x)
        if isinstance(x, PackedSequence) and unpacked is None:
            raise ExportError(
                f"{self.name} ({self.kind}) was fed a PackedSequence packed where the exporter cannot reach (e.g. "
                "pack_sequence, or pack_padded_sequence bound in a module outside the model's files)."
            )
        self.calls += 1
        unbatched = False
        lens: torch.Tensor | None = None
        if unpacked is not None:
            self.saw_packed = True
            seq, lens = unpacked
        elif not isinstance(x, torch.Tensor):
            raise ExportError(f"{self.name} ({self.kind}): its input is a {type(x).__name__}.")
        else:
            unbatched = x.dim() == 2
            seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        h0 = c0 = None
        if hx is not None:
            h0, c0 = hx if self.kind == "LSTM" else (hx, None)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = None if c0 is None else c0.unsqueeze(1)
        finals_h, finals_c = [], []
        d = self.directions
        for layer, (w, r, b) in enumerate(self.weights):
            part = slice(layer * d, (layer + 1) * d)
            optional = [lens, None if h0 is None else h0[part], None if c0 is None else c0[part]]
            y, y_h, *y_c = _RNNLayer.apply(  # type: ignore[no-untyped-call]
                self.op,
                tuple(t is not None for t in optional),
                seq,
                w.to(seq.dtype),
                r.to(seq.dtype),
                b.to(seq.dtype),
                *(t for t in optional if t is not None),
            )
            # Y (T, D, B, H) -> (T, B, D*H): directions side by side, as torch concatenates them.
            seq = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
            finals_h.append(y_h)
            finals_c.extend(y_c)
        h_n = torch.cat(finals_h, dim=0)
        c_n = torch.cat(finals_c, dim=0) if finals_c else h_n
        out: Any
        if lens is not None:
            out = PaddedPack.of(seq, lens)
        elif unbatched:
            out, h_n, c_n = seq.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        else:
            out = seq.transpose(0, 1) if self.batch_first else seq
        return out, ((h_n, c_n) if self.kind == "LSTM" else h_n)


def lstm_layer(
    x: torch.Tensor, seq_lens: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM layer with a zero initial state, for modules that lower themselves (the export twins).

    Args:
        x: float (T, B, In) time-major inputs.
        seq_lens: int (B) true lengths, 1 <= length <= T (int32 saves the graph a Cast per layer).
        w, r, b: ONNX-layout weights (``onnx_weights``).

    Returns:
        ``y`` float (T, D, B, H), zeros past each length, and ``y_h`` float (D, B, H).
    """
    y, y_h, _ = _RNNLayer.apply("LSTM", (True, False, False), x, w, r, b, seq_lens)  # type: ignore[no-untyped-call]
    return y, y_h


def register_onnx_weights(module: nn.Module, rnn: nn.RNNBase, prefix: str) -> None:
    """Register ``rnn``'s weights on ``module`` in ONNX layout as buffers ``{prefix}{layer}_W/_R/_B`` (copies; the
    trained model is not modified): W (D, G*H, In), R (D, G*H, H), B (D, 2*G*H)."""
    for layer in range(rnn.num_layers):
        w, r, b = onnx_weights(rnn, layer)
        module.register_buffer(f"{prefix}{layer}_W", w)
        module.register_buffer(f"{prefix}{layer}_R", r)
        module.register_buffer(f"{prefix}{layer}_B", b)
