"""flair ``LanguageModel`` (flair.models.LanguageModel): the character LSTM language model behind
``FlairEmbeddings``, a forward LM with 1 layer of 1024 (flair's "-fast" models; the large ones have 2048).

Built without downloads: the character dictionary is made here from ``string.printable`` (flair's ``common_chars``
would download). Input as flair's own callers feed it: char ids (chars, batch) time-major, and ``hidden`` the
``(h0, c0)`` tuple of ``init_hidden(batch)``. ``forward`` calls ``flatten_parameters()`` and returns
``(decoded, output, (h, c))``.

A user expects this to export (one LSTM over a padded, time-major batch); ``hidden`` is a tuple argument, not a
tensor.
"""

import string

import torch
from flair.data import Dictionary
from flair.models import LanguageModel

LIBRARY = "flair"


def make():
    torch.manual_seed(0)
    chars = Dictionary(add_unk=True)
    for c in string.printable:
        chars.add_item(c)
    model = LanguageModel(chars, is_forward_lm=True, hidden_size=1024, nlayers=1, embedding_size=100, dropout=0.1)
    model.eval()
    batch, steps = 2, 30
    text = ["The quick brown fox jumps over", "Peter Blackburn reports from B"]
    ids = torch.tensor([[chars.get_idx_for_item(c) for c in line[:steps]] for line in text]).t().contiguous()
    hidden = model.init_hidden(batch)
    axes = {"input": {0: "chars", 1: "batch"}, "hidden_0": {1: "batch"}, "hidden_1": {1: "batch"}}
    return model, (ids, hidden), axes
