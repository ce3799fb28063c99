"""speechbrain ``LSTM`` (speechbrain.nnet.RNN.LSTM) with relative lengths, behind the two-argument wrapper a user
writes to pass ``lengths=`` by keyword (speechbrain's own call style) through a positional export API.

Same model and inputs as speechbrain_lstm_lengths.py: x (batch, frames, 40) and lengths as fractions in (0, 1]
(speechbrain's ``wav_lens`` convention), packed inside speechbrain with ``lengths * x.size(1)``.

A user expects this to export with the lengths honoured (padding ignored).
"""

import torch
from speechbrain.nnet.RNN import LSTM

LIBRARY = "speechbrain"
EXAMPLE = (3, 40)


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = LSTM(hidden_size=64, input_shape=[None, None, 40], num_layers=2, bidirectional=True)

    def forward(self, x, lengths):
        output, _ = self.lstm(x, lengths=lengths)
        return output


def make_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
    """(x (batch, length, 40), relative lengths in (0, 1], the longest 1.0), as speechbrain pads a batch."""
    frames = torch.randint(max(1, length // 3), length + 1, (batch,))
    frames[0] = length
    return torch.randn(batch, length, 40), frames.float() / length


def make():
    torch.manual_seed(0)
    model = Encoder().eval()
    return model, make_inputs(*EXAMPLE), {"x": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
