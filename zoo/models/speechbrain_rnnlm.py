"""speechbrain ``RNNLM`` (speechbrain.lobes.models.RNNLM.RNNLM): the LSTM language model of the ASR recipes
(``rnn_class`` speechbrain.nnet.RNN.LSTM, 2 layers), at reduced widths. Input: token ids (batch, tokens).

A user expects this to export: embedding > 2-layer LSTM (``flatten_parameters()`` in forward) > DNN > linear,
on a padded batch without lengths.
"""

import torch
from speechbrain.lobes.models.RNNLM import RNNLM

LIBRARY = "speechbrain"


def make():
    torch.manual_seed(0)
    model = RNNLM(
        output_neurons=1000,
        embedding_dim=128,
        activation=torch.nn.LeakyReLU,
        dropout=0.0,
        rnn_layers=2,
        rnn_neurons=256,
        dnn_blocks=1,
        dnn_neurons=128,
    )
    model.eval()
    tokens = torch.randint(1, 1000, (3, 20))
    return model, (tokens,), {"x": {0: "batch", 1: "tokens"}}
