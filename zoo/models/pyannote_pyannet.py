"""pyannote.audio ``PyanNet`` (pyannote.audio.models.segmentation.PyanNet): speaker segmentation, SincNet > LSTM.

Built as pyannote's segmentation-3.0 checkpoint is (powerset of 3 speakers, at most 2 at once, 7 classes): the task
specifications are assigned and ``setup()`` adds the classifier, as ``Model.on_load_checkpoint`` does; weights are
seeded random. Input: waveforms (batch, channel=1, samples), here half a second at 16 kHz.

A user expects this to export: a 2-layer bidirectional ``nn.LSTM`` (batch_first) over SincNet frames, no packing;
the frame count is a function of the sample count (strided convolutions and pooling).
"""

import torch
from pyannote.audio.core.task import Problem, Resolution, Specifications
from pyannote.audio.models.segmentation import PyanNet

LIBRARY = "pyannote.audio"


def make():
    torch.manual_seed(0)
    model = PyanNet(sincnet={"stride": 10}, lstm={"hidden_size": 128, "num_layers": 2, "bidirectional": True})
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    model.setup()
    model.eval()
    waveforms = torch.randn(2, 1, 8000)
    return model, (waveforms,), {"waveforms": {0: "batch", 2: "samples"}}
