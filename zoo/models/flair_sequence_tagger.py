"""flair ``SequenceTagger`` without CRF (flair.models.SequenceTagger, ``use_crf=False``): BiLSTM + softmax tagger.

Built as flair_sequence_tagger_crf.py (local ``OneHotEmbeddings``, seeded random weights, input the tensors
``tagger._prepare_tensors`` makes: embedded tokens (batch, tokens, 64) and int64 lengths, longest first).

Without a CRF, ``forward`` ends in ``_get_scores_from_features``: a Python loop over the batch that slices each
sentence to its length (``feat[:length]``) and concatenates them to (sum of lengths, tags). A user expects it to
export; the loop runs once per example sentence, so a faithful exporter should refuse it (or the graph is only
right for the example's batch size).
"""

from flair_sequence_tagger_crf import build

LIBRARY = "flair"


def make():
    return build(use_crf=False)
