"""An export-only twin of ``BiLSTMClassifier`` whose LSTM layers export as single ONNX ``LSTM`` nodes.

Why a twin and not ``torch.onnx.export(BiLSTMClassifier)``: the trained model feeds its LSTM a packed sequence.
Neither exporter maps that to ONNX ``LSTM``'s ``sequence_lens``:

- TorchScript traces the pack/unpack around the LSTM as no-ops or as sort/unsort + scatter machinery frozen to
  the example's batch, so padding leaks into the scores or other batch sizes fail
  (https://github.com/pytorch/pytorch/issues/48460, https://github.com/pytorch/pytorch/issues/62240,
  https://github.com/pytorch/pytorch/issues/41774, https://github.com/microsoft/onnxruntime/issues/11830).
- dynamo does not trace ``pack_padded_sequence`` at all (https://github.com/pytorch/pytorch/issues/112044).

So each layer goes through ``OnnxLSTM``, a ``torch.autograd.Function`` that computes in eager torch exactly what
the trained model computes (a packed ``nn.LSTM`` pass) and whose ``symbolic`` emits one ONNX ``LSTM`` node with
``sequence_lens`` (TorchScript exporter, ``dynamo=False``). Weights are buffers already in ONNX layout (gate order
iofc, bias = concat(Wb, Rb)), so they land in the graph as constant initializers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_onnx.exporter.rnn_nodes import LoweredRNN
from lstm_onnx.trainer.model import BiLSTMClassifier

__all__ = ["OnnxExportClassifier", "OnnxLSTM", "onnx_gate_order", "register_lstm_weights", "torch_gate_order"]


def onnx_gate_order(weight: torch.Tensor) -> torch.Tensor:
    """Reorder stacked gate rows from torch's (i, f, g, o) to ONNX's (i, o, f, c).

    Args:
        weight: float (4H, ...) or (4H) torch gate-stacked tensor.

    Returns:
        The same rows in ONNX order.
    """
    i, f, g, o = weight.chunk(4, dim=0)
    return torch.cat([i, o, f, g], dim=0)


def torch_gate_order(weight: torch.Tensor) -> torch.Tensor:
    """Inverse of ``onnx_gate_order``: rows (i, o, f, c) back to torch's (i, f, g, o)."""
    i, o, f, c = weight.chunk(4, dim=0)
    return torch.cat([i, f, c, o], dim=0)


def _eager_lstm(
    x: torch.Tensor,
    seq_lens: torch.Tensor,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    input_size: int,
    hidden_size: int,
    num_directions: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ONNX ``LSTM`` semantics (layout 0, zero initial state) computed by torch's packed LSTM kernel.

    Args:
        x: float (T, B, In) time-major inputs.
        seq_lens: int32 (B) true lengths, 1 <= length <= T.
        w: float (D, 4H, In), r: float (D, 4H, H), b: float (D, 8H), ONNX layout.
        input_size: In (a Python int: under tracing, tensor sizes are traced values).
        hidden_size: H.
        num_directions: D, 2 for bidirectional, else 1 (a Python int, for the same reason).

    Returns:
        ``y`` float (T, D, B, H) with zeros past each length (as ORT writes them) and ``y_h`` float (D, B, H):
        forward at position length-1, backward at position 0.
    """
    d = num_directions
    lstm = nn.LSTM(input_size, hidden_size, num_layers=1, bidirectional=d == 2).to(x.dtype)
    with torch.no_grad():
        for k, suffix in enumerate(["", "_reverse"][:d]):
            getattr(lstm, f"weight_ih_l0{suffix}").copy_(torch_gate_order(w[k]))
            getattr(lstm, f"weight_hh_l0{suffix}").copy_(torch_gate_order(r[k]))
            wb, rb = b[k].chunk(2)
            getattr(lstm, f"bias_ih_l0{suffix}").copy_(torch_gate_order(wb))
            getattr(lstm, f"bias_hh_l0{suffix}").copy_(torch_gate_order(rb))
        packed = pack_padded_sequence(x, seq_lens.cpu().long(), enforce_sorted=False)
        out, (h_n, _) = lstm(packed)
        y, _ = pad_packed_sequence(out, total_length=x.shape[0])  # (T, B, D*H), zero padded
    return y.view(y.shape[0], y.shape[1], d, hidden_size).permute(0, 2, 1, 3).contiguous(), h_n


def _time_major_pool(
    y: torch.Tensor, lengths: torch.Tensor, h_n: torch.Tensor, pooling: tuple[str, ...]
) -> torch.Tensor:
    """``trainer.model.masked_pool`` computed on the last LSTM's output as ONNX ``LSTM`` writes it, (T, D, B, H).

    Pooling along axis 0 of Y and transposing only the pooled (D, B, H) results keeps the full-sequence Transposes
    (T, D, B, H) -> (B, T, D*H) out of the graph. ORT's CPU ``LSTM`` and ``DynamicQuantizeLSTM`` write exact zeros
    past each ``sequence_lens`` (measured on onnxruntime 1.31.1), but the ONNX spec leaves those values undefined and
    the cuDNN path could not be checked here, so "mean" multiplies by the validity mask as well (one broadcast Mul,
    ~2% of the int8 model's time) rather than trust the padding. "max" adds a -inf mask (every length is >= 1).
    ORT op profile of the int8 benchmark model (B=32, T=256, 1 thread): non-LSTM ops 18.3 -> 13.0 ms per run.

    Args:
        y: float (T, D, B, H) last-layer outputs, zeros past each length.
        lengths: int64 (B) true lengths, all >= 1.
        h_n: float (D, B, H) last-layer final hidden state.
        pooling: Names from ``POOLINGS``, concatenated in this order.

    Returns:
        float (B, len(pooling) * D * H), feature order as ``masked_pool``'s (direction-major within each part).
    """
    steps = torch.arange(y.shape[0], device=y.device)
    valid = steps.view(-1, 1, 1, 1) < lengths.view(1, 1, -1, 1)  # (T, 1, B, 1)
    parts = []
    for name in pooling:
        if name == "last":
            pooled = h_n
        elif name == "max":
            # An additive (T, 1, B, 1) mask, 0 on valid steps and -inf past each length: y + 0 is y and y + -inf is
            # -inf exactly, so this is masked_fill's result, but ORT's broadcast Add is ~2x cheaper than a
            # broadcast Where on the full (T, D, B, H) tensor (2.4 vs 4.6 ms at T=256, B=32, H=256, 1 thread).
            penalty = torch.where(valid, 0.0, float("-inf")).to(y.dtype)
            pooled = (y + penalty).amax(dim=0)
        elif name == "mean":
            pooled = (y * valid.to(y.dtype)).sum(dim=0) / lengths.view(1, -1, 1).to(y.dtype)
        else:  # pragma: no cover - ModelConfig validates names
            raise ValueError(f"Unknown pooling {name!r}.")
        parts.append(pooled.transpose(0, 1).reshape(pooled.shape[1], -1))  # (D, B, H) -> (B, D*H)
    return torch.cat(parts, dim=1)


class OnnxLSTM(torch.autograd.Function):
    """One LSTM layer: packed torch LSTM in eager mode, one ONNX ``LSTM`` node with ``sequence_lens`` on export."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        seq_lens: torch.Tensor,
        w: torch.Tensor,
        r: torch.Tensor,
        b: torch.Tensor,
        input_size: int,
        hidden_size: int,
        num_directions: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # While torch.onnx traces, the body of a Function with a symbolic is replaced by the symbolic anyway; tracing
        # through it would only raise TracerWarnings (sizes turned into Python ints). Pause the tracer here.
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)  # type: ignore[attr-defined]
        try:
            return _eager_lstm(x, seq_lens, w, r, b, input_size, hidden_size, num_directions)
        finally:
            torch._C._set_tracing_state(state)  # type: ignore[attr-defined]

    @staticmethod
    def symbolic(
        g: Any, x: Any, seq_lens: Any, w: Any, r: Any, b: Any, input_size: int, hidden_size: int, num_directions: int
    ) -> tuple[Any, Any]:  # pragma: no cover - exercised through torch.onnx.export
        direction = "bidirectional" if num_directions == 2 else "forward"
        # No initial_h/initial_c: ONNX defaults them to zeros of the *runtime* batch size. Building them from a
        # Python batch size would freeze the example's batch into the graph (onnxruntime#11830).
        y, y_h, _ = g.op(
            "LSTM",
            x,
            w,
            r,
            b,
            seq_lens,
            hidden_size_i=hidden_size,
            direction_s=direction,
            layout_i=0,
            outputs=3,
        )
        return y, y_h


def register_lstm_weights(module: nn.Module, lstm: nn.LSTM, num_layers: int, num_directions: int) -> None:
    """Register ``lstm``'s weights on ``module`` in ONNX ``LSTM`` layout, as buffers ``lstm{layer}_W/_R/_B``.

    W: (D, 4H, In), R: (D, 4H, H), B: (D, 8H) = concat(Wb, Rb); gates reordered from torch's ifgo to ONNX's iofc.
    Copies: the trained model is not modified.
    """
    suffixes = ["", "_reverse"][:num_directions]
    for layer in range(num_layers):
        w = [onnx_gate_order(getattr(lstm, f"weight_ih_l{layer}{s}").detach()) for s in suffixes]
        r = [onnx_gate_order(getattr(lstm, f"weight_hh_l{layer}{s}").detach()) for s in suffixes]
        b = [
            torch.cat(
                [
                    onnx_gate_order(getattr(lstm, f"bias_ih_l{layer}{s}").detach()),
                    onnx_gate_order(getattr(lstm, f"bias_hh_l{layer}{s}").detach()),
                ]
            )
            for s in suffixes
        ]
        module.register_buffer(f"lstm{layer}_W", torch.stack(w).contiguous())  # (D, 4H, In)
        module.register_buffer(f"lstm{layer}_R", torch.stack(r).contiguous())  # (D, 4H, H)
        module.register_buffer(f"lstm{layer}_B", torch.stack(b).contiguous())  # (D, 8H)


class OnnxExportClassifier(LoweredRNN):
    """Computes what a trained ``BiLSTMClassifier`` computes, in an exportable form.

    ``forward(input_ids (B, T) int64, lengths (B) int64) -> logits (B, C) float32``, parameters named as
    ``CLASSIFY_IO``'s inputs (``export_module`` names the graph inputs after them). Build it from a model in eval
    mode: dropout is left out (it is the identity at inference).

    Args:
        model: The trained classifier; its weights are copied (the model is not modified).
    """

    def __init__(self, model: BiLSTMClassifier) -> None:
        super().__init__()
        config = model.config
        self.config = config
        self.lowered_layers = config.num_layers
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.embedding.load_state_dict(model.embedding.state_dict())
        self.head = nn.Linear(config.features, config.num_labels)
        self.head.load_state_dict(model.head.state_dict())
        register_lstm_weights(self, model.lstm, config.num_layers, config.num_directions)
        # Inference only. Without this the Function's outputs require grad (via the embedding), and the tracer,
        # paused inside the Function, would try to bake them into the graph as constants.
        self.requires_grad_(False)
        self.eval()

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Compute logits.

        Args:
            input_ids: int64 (B, T) token ids, right-padded.
            lengths: int64 (B) true lengths, 1 <= length <= T.

        Returns:
            float32 (B, C) logits.
        """
        config = self.config
        # ONNX LSTM wants sequence_lens as int32; the Cast lives inside the graph so callers keep int64.
        seq_lens = lengths.to(torch.int32)
        # Transpose the int64 ids (B, T), not the embedded floats (B, T, E): the Gather then writes the time-major
        # (T, B, E) input that layout 0 wants directly, and no Transpose of the embeddings is left in the graph.
        x = self.embedding(input_ids.transpose(0, 1))  # (T, B, E)
        y = x  # rebound by the loop (num_layers >= 1)
        h_n = x
        for layer in range(config.num_layers):
            if layer > 0:
                # Y (T, D, B, H) -> (T, B, D*H): forward and backward features side by side, as torch concatenates
                # them. A Reshape alone cannot do this (D sits between T and B), so the Transpose stays here.
                # Shapes come from the tensor at run time (traced as Shape ops), never from the example.
                x = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
            y, h_n = OnnxLSTM.apply(  # type: ignore[no-untyped-call]
                x,
                seq_lens,
                getattr(self, f"lstm{layer}_W"),
                getattr(self, f"lstm{layer}_R"),
                getattr(self, f"lstm{layer}_B"),
                config.embedding_dim if layer == 0 else config.num_directions * config.hidden_size,
                config.hidden_size,
                config.num_directions,
            )
        pooled = _time_major_pool(y, lengths, h_n, config.pooling)
        logits: torch.Tensor = self.head(pooled).float()
        return logits
