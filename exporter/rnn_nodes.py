"""Any ``nn.LSTM``/``nn.GRU`` as ONNX ``LSTM``/``GRU`` nodes with ``sequence_lens`` (for module export).

``ExportableRNN`` stands in for a user's RNN while ``torch.onnx.export`` traces (TorchScript, ``dynamo=False``; see
exporter/onnx_module.py for the upstream issues behind that choice). Each layer goes through ``_RNNLayer``, a
``torch.autograd.Function`` whose eager body is torch's own packed kernel and whose ``symbolic`` is one ONNX node:

- ``sequence_lens`` comes from the lengths a ``PaddedPack`` carries (the traced stand-in of a ``PackedSequence``,
  made by ``pack_padded`` in module_export's patch); no sort/unsort, no scatter, no Loop.
- GRU nodes set ``linear_before_reset=1``: torch applies the reset gate after the recurrent matmul.
- ``initial_h``/``initial_c`` are fed only when the caller passed them, so a zero state defaults to zeros of the
  *runtime* batch (onnxruntime#11830), and a state computed from the input stays a graph value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstm_onnx.runtime.errors import ExportError

__all__ = ["ExportableRNN", "LoweredRNN", "PaddedPack", "onnx_weights"]


@dataclass
class PaddedPack:
    """What a ``PackedSequence`` holds, kept padded so it traces: time-major data and the true lengths.

    Only ``nn.LSTM``/``nn.GRU`` and ``pad_packed_sequence`` may consume one. Its fields are named unlike a
    ``PackedSequence``'s on purpose: a model reading ``.data`` (packed rows, (N, F)) or ``.batch_sizes`` would get
    something else here, so those raise ``ExportError`` instead of tracing a different computation.

    Attributes:
        padded: float (T, B, F) time-major values; positions past a row's length are undefined.
        lengths: int64 (B) true lengths, 1 <= length <= T.
        source: Where it came from (for messages): ``pack_padded_sequence`` or an RNN's name.
    """

    padded: torch.Tensor
    lengths: torch.Tensor
    source: str = "pack_padded_sequence"

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes a dataclass instance lacks: PackedSequence's own fields and methods.
        if name.startswith("__"):
            raise AttributeError(name)
        raise ExportError(
            f"Cannot export: the model reads PackedSequence.{name} of the output of {self.source}; only nn.LSTM, "
            "nn.GRU and pad_packed_sequence may consume a packed sequence here. Unpack it with pad_packed_sequence "
            "first."
        )


class LoweredRNN(nn.Module):
    """Base of a module whose RNN layers are already lowered: its ``forward`` itself emits ONNX ``LSTM``/``GRU`` nodes
    fed ``sequence_lens`` (e.g. through ``onnx_module.OnnxLSTM``), so ``export_module`` has nothing to swap in it.

    ``export_module`` counts it as an RNN for its refusal check and expects exactly ``lowered_layers`` nodes of type
    ``lowered_op``, each with ``sequence_lens``, in the graph.

    Attributes:
        lowered_op: ``"LSTM"`` or ``"GRU"``.
        lowered_layers: ONNX RNN nodes one ``forward`` emits.
    """

    lowered_op: str = "LSTM"
    lowered_layers: int = 0


# Gate blocks in ONNX order as indices into torch's: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) -> (z, r, h).
_ONNX_FROM_TORCH = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}


def _onnx_gates(weight: torch.Tensor, kind: str, inverse: bool = False) -> torch.Tensor:
    """Reorder stacked gate rows from torch's order to ONNX's (``inverse``: back from ONNX's to torch's)."""
    order = _ONNX_FROM_TORCH[kind]
    if inverse:
        order = tuple(order.index(k) for k in range(len(order)))
    blocks = weight.chunk(len(order), dim=0)
    return torch.cat([blocks[k] for k in order], dim=0)


def onnx_weights(rnn: nn.LSTM | nn.GRU, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer's weights in ONNX layout.

    Args:
        rnn: The torch module (``bias=False`` gives zero biases).
        layer: Layer index.

    Returns:
        W float (D, G*H, In), R float (D, G*H, H), B float (D, 2*G*H); G = 4 (LSTM) or 3 (GRU).
    """
    kind = "GRU" if isinstance(rnn, nn.GRU) else "LSTM"
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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ONNX ``LSTM``/``GRU`` semantics (layout 0) computed by torch's packed kernel.

    Args:
        kind: ``"LSTM"`` or ``"GRU"``.
        x: float (T, B, In).
        seq_lens: int (B) lengths, or ``None`` for every row running all T steps.
        w, r, b: ONNX-layout weights (see ``onnx_weights``).
        h0, c0: float (D, B, H) initial states, or ``None`` for zeros.

    Returns:
        Y float (T, D, B, H) zero past each length, Y_h float (D, B, H), Y_c (LSTM's final cell, else Y_h).
    """
    d, hidden = w.shape[0], r.shape[2]
    cls = nn.LSTM if kind == "LSTM" else nn.GRU
    rnn = cls(x.shape[2], hidden, num_layers=1, bidirectional=d == 2).to(x.dtype)
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
    """One RNN layer: torch's kernel in eager mode, one ONNX ``LSTM``/``GRU`` node on export.

    Optional inputs travel as flags plus only the tensors present: a ``None`` argument breaks TorchScript's graph
    passes (an internal assert in dead-code elimination, torch 2.13).
    """

    @staticmethod
    def forward(
        ctx: Any, kind: str, present: tuple[bool, bool, bool], x: torch.Tensor, *tensors: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        w, r, b, *rest = tensors
        seq_lens, h0, c0 = (rest.pop(0) if flag else None for flag in present)
        # The tracer replaces this body by the symbolic anyway; tracing through it would only raise TracerWarnings.
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # type: ignore[attr-defined]
        try:
            y, y_h, y_c = _eager_layer(kind, x, seq_lens, w, r, b, h0, c0)
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
        hidden = w.type().sizes()[1] // (4 if kind == "LSTM" else 3)
        directions = w.type().sizes()[0]
        lens = _absent(g) if seq_lens is None else g.op("Cast", seq_lens, to_i=torch.onnx.TensorProtoDataType.INT32)
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
        y, y_h = g.op("GRU", *inputs, outputs=2, linear_before_reset_i=1, **attrs)
        return y, y_h


class ExportableRNN(nn.Module):
    """Takes what a user's ``nn.LSTM``/``nn.GRU`` takes and returns what it returns, in an exportable form.

    Accepts a ``PaddedPack`` (what ``pack_padded_sequence`` becomes during export), a padded (B, T, F) or
    (T, B, F) tensor, or an unbatched (T, F) tensor; optional ``h0`` (LSTM: ``(h0, c0)``) of shape (L*D, B, H).

    Args:
        rnn: The module it stands in for (its weights are copied; it is not modified).
        name: Its dotted name in the model (for messages).
    """

    def __init__(self, rnn: nn.LSTM | nn.GRU, name: str) -> None:
        super().__init__()
        self.kind = "GRU" if isinstance(rnn, nn.GRU) else "LSTM"
        self.name = name
        self.batch_first = rnn.batch_first
        self.num_layers = rnn.num_layers
        self.directions = 2 if rnn.bidirectional else 1
        self.saw_packed = False  # set when fed a PaddedPack: its nodes must then carry sequence_lens
        self.calls = 0  # forward calls while tracing: each emits num_layers nodes (a shared encoder runs twice)
        for layer in range(rnn.num_layers):
            w, r, b = onnx_weights(rnn, layer)
            self.register_buffer(f"w{layer}", w)
            self.register_buffer(f"r{layer}", r)
            self.register_buffer(f"b{layer}", b)

    def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
        """Run every layer; see the class docstring for the accepted inputs.

        Returns:
            ``(output, h_n)`` (GRU) or ``(output, (h_n, c_n))`` (LSTM), shaped as torch returns them; ``output`` is
            a ``PaddedPack`` when the input was one.
        """
        if isinstance(x, PackedSequence):
            raise ExportError(
                f"Cannot export {self.name} ({self.kind}): it was fed a PackedSequence packed where the exporter "
                "cannot reach (e.g. a pack_padded_sequence bound under another name in a module outside the model's "
                "files). Call torch.nn.utils.rnn.pack_padded_sequence in the model's own module."
            )
        if not isinstance(x, (PaddedPack, torch.Tensor)):
            raise ExportError(f"Cannot export {self.name} ({self.kind}): its input is a {type(x).__name__}.")
        self.calls += 1
        unbatched = False
        lens: torch.Tensor | None = None
        if isinstance(x, PaddedPack):
            self.saw_packed = True
            seq, lens = x.padded, x.lengths
        else:
            unbatched = x.dim() == 2
            seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        h0 = c0 = None
        if state is not None:
            h0, c0 = state if self.kind == "LSTM" else (state, None)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = None if c0 is None else c0.unsqueeze(1)
        finals_h, finals_c = [], []
        d = self.directions
        for layer in range(self.num_layers):
            part = slice(layer * d, (layer + 1) * d)
            optional = [lens, None if h0 is None else h0[part], None if c0 is None else c0[part]]
            y, y_h, *y_c = _RNNLayer.apply(  # type: ignore[no-untyped-call]
                self.kind,
                tuple(t is not None for t in optional),
                seq,
                getattr(self, f"w{layer}"),
                getattr(self, f"r{layer}"),
                getattr(self, f"b{layer}"),
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
            out = PaddedPack(seq, lens, f"{self.name} ({self.kind})")
        elif unbatched:
            out, h_n, c_n = seq.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        else:
            out = seq.transpose(0, 1) if self.batch_first else seq
        return out, ((h_n, c_n) if self.kind == "LSTM" else h_n)
