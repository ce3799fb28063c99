"""torchaudio ``Tacotron2`` (torchaudio.models.Tacotron2), the whole model's ``forward`` (teacher forcing: tokens,
token_lengths, target mel_specgram, mel_specgram_lengths), torchaudio's defaults, seeded random weights.

Expected refusal: the decoder steps ``nn.LSTMCell``s (attention RNN and decoder RNN) in a Python ``while`` loop
over the mel frames, which a trace unrolls to the example's frame count. Plain torch.onnx traces it into a graph
fixed to the example's mel length.
"""

import torch
from torchaudio.models import Tacotron2

LIBRARY = "torchaudio"
EXAMPLE = (2, 20)


def make_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
    """tokens (batch, length) with sorted lengths, and a target mel of 3 frames per token (80 mels)."""
    token_lengths = torch.randint(max(1, length // 2), length + 1, (batch,)).sort(descending=True).values
    token_lengths[0] = length
    tokens = torch.randint(1, 148, (batch, length))
    frames = 3 * length
    mel_lengths = (token_lengths * 3).clamp(max=frames)
    mel = torch.randn(batch, 80, frames)
    return tokens, token_lengths, mel, mel_lengths


def make():
    torch.manual_seed(0)
    model = Tacotron2().eval()
    axes = {
        "tokens": {0: "batch", 1: "symbols"},
        "token_lengths": {0: "batch"},
        "mel_specgram": {0: "batch", 2: "frames"},
        "mel_specgram_lengths": {0: "batch"},
    }
    return model, make_inputs(*EXAMPLE), axes
