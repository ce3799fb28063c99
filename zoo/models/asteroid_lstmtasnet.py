"""asteroid ``LSTMTasNet`` (asteroid.models.LSTMTasNet): TasNet source separation with a 4-layer bidirectional
LSTM masker (asteroid's defaults except hid_size 256), 2 sources, 8 kHz. Input: mixture waveform (batch, samples).

A user expects this to export: free filterbank conv encoder > LSTM masker > transposed-conv decoder, with the output
padded back to the input length (``pad_x_to_y``). No packing.
"""

import torch
from asteroid.models import LSTMTasNet

LIBRARY = "asteroid"


def make():
    torch.manual_seed(0)
    model = LSTMTasNet(n_src=2, hid_size=256, n_layers=4, bidirectional=True, dropout=0.3, sample_rate=8000)
    model.eval()
    wav = torch.randn(2, 4000)
    return model, (wav,), {"wav": {0: "batch", 1: "samples"}}
