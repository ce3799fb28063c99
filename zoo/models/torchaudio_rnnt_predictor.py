"""torchaudio RNN-T prediction network of ``emformer_rnnt_base`` (torchaudio.models.RNNT.predict, class
``_Predictor``), 4097 symbols as the LibriSpeech bundle; seeded random weights. Inputs: targets (batch, tokens) and
target_lengths; ``RNNT.predict(targets, target_lengths, state=None)`` returns (output, lengths, state).

The predictor's LSTM is torchaudio's ``_CustomLSTM`` (layer-normalised gates), stepped over time by a Python loop:
expected refusal (an RNN cell loop unrolled to the example's length). The module below is the thin wrapper a user
writes to export ``predict`` with no initial state.
"""

import torch
from torchaudio.models import emformer_rnnt_base

LIBRARY = "torchaudio"


class Predictor(torch.nn.Module):
    def __init__(self, rnnt):
        super().__init__()
        self.rnnt = rnnt

    def forward(self, targets, target_lengths):
        output, lengths, _ = self.rnnt.predict(targets, target_lengths, None)
        return output, lengths


def make():
    torch.manual_seed(0)
    model = Predictor(emformer_rnnt_base(num_symbols=4097)).eval()
    targets = torch.randint(0, 4096, (3, 12))
    target_lengths = torch.tensor([12, 9, 5])
    return model, (targets, target_lengths), {"targets": {0: "batch", 1: "tokens"}, "target_lengths": {0: "batch"}}
