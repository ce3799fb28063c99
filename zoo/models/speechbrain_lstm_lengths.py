"""speechbrain ``LSTM`` (speechbrain.nnet.RNN.LSTM) fed relative lengths, speechbrain's convention: ``lengths`` are
fractions in [0, 1] of the padded time axis (the ``wav_lens`` of every recipe). The wrapper packs with
``pack_padded_sequence(x, lengths * x.size(1), enforce_sorted=False)`` and unpacks the output.

``forward(x, hx=None, lengths=None)``: speechbrain passes ``lengths=`` by keyword; the factory convention is
positional, so the example is ``(x, None, lengths)`` (see speechbrain_lstm_lengths_kw.py for the same model behind
a two-argument wrapper).

A user expects this to export with the lengths honoured (padding ignored). The lengths input is a float tensor, and
the wrapper turns it into packed lengths via ``.cpu()``: an exporter that looks for integer lengths will not see it.
"""

import torch
from speechbrain.nnet.RNN import LSTM

LIBRARY = "speechbrain"
EXAMPLE = (3, 40)


def make_inputs(batch: int, length: int) -> tuple[torch.Tensor | None, ...]:
    """(x (batch, length, 40), hx None, relative lengths in (0, 1], the longest 1.0), as speechbrain pads a batch."""
    frames = torch.randint(max(1, length // 3), length + 1, (batch,))
    frames[0] = length
    x = torch.randn(batch, length, 40)
    return x, None, frames.float() / length


def make():
    torch.manual_seed(0)
    model = LSTM(hidden_size=64, input_shape=[None, None, 40], num_layers=2, bidirectional=True)
    model.eval()
    return model, make_inputs(*EXAMPLE), {"x": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
