"""stanza-style packed BiLSTM tagger (the pattern of stanza.models.pos.model.Tagger, written out here so stanza
itself is not needed): stanza's ``PackedLSTM`` wrapper (stanza/models/common/packed_lstm.py), which tests
``isinstance(input, PackedSequence)`` and packs only a padded input, fed by a tagger that packs each embedding,
concatenates their ``.data``, applies dropout on the packed data and re-packs it with
``PackedSequence(data, inputs[0].batch_sizes)``; learned initial states expanded to the batch; per-token classifier
on ``lstm_outputs.data`` and ``pad_packed_sequence(PackedSequence(x, batch_sizes))`` back to (batch, words, tags).
Inputs: word ids and pretrained-vocab ids (batch, words) and sentence lengths sorted longest first (stanza sorts
its batches).

A user expects this to export (an LSTM with lengths); it reads the packed sequence's own fields (``.data``,
``.batch_sizes``), which lstm-onnx refuses today.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

LIBRARY = "torch"


class PackedLSTM(nn.Module):
    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers,
        bias=True,
        batch_first=False,
        dropout=0,
        bidirectional=False,
        pad=False,
        rec_dropout=0,
    ):
        super().__init__()

        self.batch_first = batch_first
        self.pad = pad
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def forward(self, input, lengths, hx=None):
        if not isinstance(input, PackedSequence):
            input = pack_padded_sequence(input, lengths, batch_first=self.batch_first)

        res = self.lstm(input, hx)
        if self.pad:
            res = (pad_packed_sequence(res[0], batch_first=self.batch_first)[0], res[1])
        return res


class Tagger(nn.Module):
    def __init__(self, n_words=500, n_pretrained=800, word_dim=75, pretrained_dim=100, hidden_dim=200, n_upos=17):
        super().__init__()
        self.word_emb = nn.Embedding(n_words, word_dim, padding_idx=0)
        self.pretrained_emb = nn.Embedding(n_pretrained, pretrained_dim, padding_idx=0)
        self.trans_pretrained = nn.Linear(pretrained_dim, word_dim, bias=False)
        self.num_layers = 2
        self.hidden_dim = hidden_dim
        self.taggerlstm = PackedLSTM(
            2 * word_dim, hidden_dim, self.num_layers, batch_first=True, bidirectional=True, dropout=0.5
        )
        self.taggerlstm_h_init = nn.Parameter(torch.zeros(2 * self.num_layers, 1, hidden_dim))
        self.taggerlstm_c_init = nn.Parameter(torch.zeros(2 * self.num_layers, 1, hidden_dim))
        self.upos_hid = nn.Linear(2 * hidden_dim, 400)
        self.upos_clf = nn.Linear(400, n_upos)
        self.drop = nn.Dropout(0.5)

    def forward(self, word, pretrained, sentlens):
        def pack(x):
            return pack_padded_sequence(x, sentlens, batch_first=True)

        inputs = [pack(self.word_emb(word)), pack(self.trans_pretrained(self.pretrained_emb(pretrained)))]
        lstm_inputs = torch.cat([x.data for x in inputs], 1)
        lstm_inputs = self.drop(lstm_inputs)
        lstm_inputs = PackedSequence(lstm_inputs, inputs[0].batch_sizes)

        hx = (
            self.taggerlstm_h_init.expand(2 * self.num_layers, word.size(0), self.hidden_dim).contiguous(),
            self.taggerlstm_c_init.expand(2 * self.num_layers, word.size(0), self.hidden_dim).contiguous(),
        )
        lstm_outputs, _ = self.taggerlstm(lstm_inputs, sentlens, hx=hx)
        lstm_outputs = lstm_outputs.data

        def pad(x):
            return pad_packed_sequence(PackedSequence(x, lstm_inputs.batch_sizes), batch_first=True)[0]

        upos_hid = F.relu(self.upos_hid(self.drop(lstm_outputs)))
        upos_pred = self.upos_clf(self.drop(upos_hid))
        return pad(upos_pred)


def make():
    torch.manual_seed(0)
    model = Tagger().eval()
    sentlens = torch.tensor([18, 14, 9, 6])
    word = torch.randint(1, 500, (4, 18))
    pretrained = torch.randint(1, 800, (4, 18))
    for i, n in enumerate(sentlens.tolist()):
        word[i, n:] = 0
        pretrained[i, n:] = 0
    axes = {"word": {0: "batch", 1: "words"}, "pretrained": {0: "batch", 1: "words"}, "sentlens": {0: "batch"}}
    return model, (word, pretrained, sentlens), axes
