"""asteroid ``DPRNNTasNet`` (asteroid.models.DPRNNTasNet): dual-path RNN separation (intra-chunk and inter-chunk
bidirectional LSTMs over chunks of the encoded signal), 2 sources, 8 kHz, chunk 100 / hop 50 as the recipes,
n_repeats 2 (recipes use 6). Input: mixture waveform (batch, samples).

A user expects this to export: the chunking is ``unfold``/``fold`` with padding computed from the length; every
LSTM runs on a reshaped (batch * chunks, chunk, features) tensor, no packing.
"""

import torch
from asteroid.models import DPRNNTasNet

LIBRARY = "asteroid"


def make():
    torch.manual_seed(0)
    model = DPRNNTasNet(
        n_src=2, bn_chan=64, hid_size=64, chunk_size=100, hop_size=50, n_repeats=2, bidirectional=True, sample_rate=8000
    )
    model.eval()
    wav = torch.randn(2, 4000)
    return model, (wav,), {"wav": {0: "batch", 1: "samples"}}
