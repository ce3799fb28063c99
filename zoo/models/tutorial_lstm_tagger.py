"""PyTorch tutorial ``LSTMTagger``, exactly as the official "Sequence Models and Long Short-Term Memory Networks"
tutorial writes it (pytorch.org/tutorials/beginner/nlp/sequence_models_tutorial.html): embedding > ``nn.LSTM`` >
linear > log-softmax, with ``self.lstm(embeds.view(len(sentence), 1, -1))``. Its input is one sentence as a 1-D
LongTensor of word ids (no batch axis); the tutorial's vocabulary, 6-dim embedding and hidden size, 3 tags.

``len(sentence)`` is a Python int under tracing (TracerWarning): the ``view`` is baked to the example's length, so
a graph traced this way is wrong or fails at any other sentence length. A user expects it to export (it is the
tutorial); a faithful exporter refuses it or handles ``len``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

LIBRARY = "torch"
EXAMPLE = (1, 5)

training_data = [
    # Tags are: DET - determiner; NN - noun; V - verb
    # For example, the word "The" is a determiner
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
]
word_to_ix = {}
# For each words-list (sentence) and tags-list in each tuple of training_data
for sent, _tags in training_data:
    for word in sent:
        if word not in word_to_ix:  # word has not been assigned an index yet
            word_to_ix[word] = len(word_to_ix)  # Assign each word with a unique index
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}  # Assign each tag with a unique index

# These will usually be more like 32 or 64 dimensional.
# We will keep them small, so we can see how the weights change as we train.
EMBEDDING_DIM = 6
HIDDEN_DIM = 6


def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


class LSTMTagger(nn.Module):
    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super(LSTMTagger, self).__init__()  # noqa: UP008 - the tutorial's own line
        self.hidden_dim = hidden_dim

        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)

        # The LSTM takes word embeddings as inputs, and outputs hidden states
        # with dimensionality hidden_dim.
        self.lstm = nn.LSTM(embedding_dim, hidden_dim)

        # The linear layer that maps from hidden state space to tag space
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


def make_inputs(batch: int, length: int) -> tuple[torch.Tensor, ...]:
    """One sentence of ``length`` word ids (the tutorial has no batch axis; ``batch`` is ignored)."""
    return (torch.randint(0, len(word_to_ix), (length,)),)


def make():
    torch.manual_seed(1)  # the tutorial's seed
    model = LSTMTagger(EMBEDDING_DIM, HIDDEN_DIM, len(word_to_ix), len(tag_to_ix)).eval()
    inputs = prepare_sequence(training_data[0][0], word_to_ix)
    return model, (inputs,), {"sentence": {0: "words"}}
