"""A plain PyTorch keyword-spotting classifier that calls ``self.rnn.flatten_parameters()`` at the top of
``forward``, the line people add to silence the "RNN module weights are not part of single contiguous chunk of
memory" warning under ``nn.DataParallel`` (speechbrain and flair do the same). 2-layer bidirectional ``nn.LSTM``
(batch_first) over MFCC frames (batch, frames, 40), mean over time, linear to 35 keywords.

A user expects this to export: ``flatten_parameters()`` changes no numbers.
"""

import torch
from torch import nn

LIBRARY = "torch"


class KeywordSpotter(nn.Module):
    def __init__(self, n_mfcc=40, hidden=128, n_keywords=35):
        super().__init__()
        self.rnn = nn.LSTM(n_mfcc, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, n_keywords)

    def forward(self, mfcc):
        self.rnn.flatten_parameters()
        out, _ = self.rnn(mfcc)
        return self.fc(out.mean(dim=1))


def make():
    torch.manual_seed(0)
    model = KeywordSpotter().eval()
    return model, (torch.randn(3, 98, 40),), {"mfcc": {0: "batch", 1: "frames"}}
