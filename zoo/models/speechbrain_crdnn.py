"""speechbrain ``CRDNN`` (speechbrain.lobes.models.CRDNN.CRDNN): the CNN > bi-LSTM > DNN encoder of the CRDNN ASR
recipes (LibriSpeech/TIMIT seq2seq), configured as their hyperparams.yaml does (``rnn_class: speechbrain.nnet.RNN.
LSTM``, time pooling 4, 2 CNN blocks, 2 DNN blocks), at reduced widths. Input: fbank features (batch, frames, 80).

A user expects this to export: speechbrain's LSTM wrapper calls ``flatten_parameters()`` and runs on the padded
batch (the recipes call the encoder without lengths); conv padding 'same' and pooling are shape arithmetic.
"""

import torch
from speechbrain.lobes.models.CRDNN import CRDNN
from speechbrain.nnet.RNN import LSTM

LIBRARY = "speechbrain"


def make():
    torch.manual_seed(0)
    model = CRDNN(
        input_shape=[None, None, 80],
        activation=torch.nn.LeakyReLU,
        dropout=0.15,
        cnn_blocks=2,
        cnn_channels=(16, 32),
        cnn_kernelsize=(3, 3),
        inter_layer_pooling_size=(2, 2),
        time_pooling=True,
        time_pooling_size=4,
        using_2d_pooling=False,
        rnn_class=LSTM,
        rnn_layers=2,
        rnn_neurons=64,
        rnn_bidirectional=True,
        rnn_re_init=True,
        dnn_blocks=2,
        dnn_neurons=64,
    )
    model.eval()
    feats = torch.randn(2, 100, 80)
    return model, (feats,), {"x": {0: "batch", 1: "frames"}}
