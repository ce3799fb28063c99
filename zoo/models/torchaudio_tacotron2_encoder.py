"""torchaudio ``Tacotron2`` encoder alone (``torchaudio.models.Tacotron2().encoder``, class ``_Encoder``): 3 conv
layers > bidirectional LSTM over ``pack_padded_sequence(x, input_lengths.cpu(), batch_first=True)`` (sorted,
``enforce_sorted=True``) > ``pad_packed_sequence``. torchaudio's defaults (512 channels); seeded random weights.

Input as ``Tacotron2.forward``/``infer`` feed it: embedded symbols (batch, 512, symbols) and int64 lengths, sorted
longest first. A user expects this to export with the lengths honoured.
"""

import torch
from torchaudio.models import Tacotron2

LIBRARY = "torchaudio"


def make():
    torch.manual_seed(0)
    encoder = Tacotron2().encoder.eval()
    x = torch.randn(3, 512, 24)
    input_lengths = torch.tensor([24, 19, 11])
    return encoder, (x, input_lengths), {"x": {0: "batch", 2: "symbols"}, "input_lengths": {0: "batch"}}
