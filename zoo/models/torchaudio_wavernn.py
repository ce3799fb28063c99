"""torchaudio ``WaveRNN`` (torchaudio.models.WaveRNN) configured as torchaudio's ``WAVERNN_LJSPEECH`` bundle
(upsample 5*5*11, hop 275, 256 classes, 10 res blocks, 512 GRU/fc units, kernel 5, 80 mels); seeded random weights.

Inputs are coupled: waveform (batch, 1, samples) with samples = (frames - 4) * 275 and specgram (batch, 1, 80,
frames); ``make_inputs(batch, frames)`` makes both. ``forward`` builds zero h0s sized from the batch and runs two
``nn.GRU`` (batch_first) over the upsampled sequence. A user expects this to export.
"""

import torch
from torchaudio.models import WaveRNN

LIBRARY = "torchaudio"
HOP = 275
KERNEL = 5
EXAMPLE = (2, 10)


def make_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
    """(waveform (batch, 1, (length - 4) * 275), specgram (batch, 1, 80, length)); ``length`` is mel frames > 4."""
    samples = (length - KERNEL + 1) * HOP
    return torch.rand(batch, 1, samples) * 2 - 1, torch.randn(batch, 1, 80, length)


def make():
    torch.manual_seed(0)
    model = WaveRNN(
        upsample_scales=[5, 5, 11],
        n_classes=256,
        hop_length=HOP,
        n_res_block=10,
        n_rnn=512,
        n_fc=512,
        kernel_size=KERNEL,
        n_freq=80,
        n_hidden=128,
        n_output=128,
    ).eval()
    axes = {"waveform": {0: "batch", 2: "samples"}, "specgram": {0: "batch", 3: "frames"}}
    return model, make_inputs(*EXAMPLE), axes
