"""torchaudio ``DeepSpeech`` (torchaudio.models.DeepSpeech): 3 fully connected layers > bidirectional ``nn.RNN``
(ReLU) > fc > log-softmax, torchaudio's defaults (2048 hidden, 40 classes), 80 features; seeded random weights.
Input: features (batch, channel=1, frames, 80).

``nn.RNN`` (not LSTM/GRU): plain torch.onnx exports it as an ONNX ``RNN`` node; lstm-onnx's export-module refuses
``nn.RNN`` today (expected refusal, in one line).
"""

import torch
from torchaudio.models import DeepSpeech

LIBRARY = "torchaudio"


def make():
    torch.manual_seed(0)
    model = DeepSpeech(n_feature=80, n_hidden=2048, n_class=40, dropout=0.0).eval()
    x = torch.randn(2, 1, 100, 80)
    return model, (x,), {"x": {0: "batch", 2: "frames"}}
