"""flair ``SequenceTagger`` with CRF (flair.models.SequenceTagger, ``use_crf=True``): the BiLSTM-CRF NER tagger.

Built without downloads: the embedding is flair's ``OneHotEmbeddings`` over a vocabulary made from the example
sentences (flair's pretrained ``WordEmbeddings``/``FlairEmbeddings`` would download); tags PER/LOC/ORG, which the tagger
expands to BIOES (13 tags, 15 with the CRF's start/stop).
Weights are seeded random. ``SequenceTagger.forward(sentence_tensor, lengths)`` takes what
``tagger._prepare_tensors(sentences)`` makes (embedded tokens (batch, tokens, 64), zero-padded, and int64 lengths,
sentences sorted longest first as flair's predict does), so that is the exported graph; the Viterbi decoding is
Python outside forward, as in flair.

A user expects this to export: ``pack_padded_sequence`` (sorted) > bidirectional LSTM > ``pad_packed_sequence`` >
linear > CRF emission + transition scores (batch, tokens, tags, tags). It returns ``(features, lengths,
transitions)``: the lengths input and a parameter come back as outputs.
"""

import torch
from flair.data import Dictionary, Sentence
from flair.embeddings import OneHotEmbeddings
from flair.models import SequenceTagger

LIBRARY = "flair"
TEXTS = [
    "George Washington went to Washington to meet the members of the Continental Congress in Philadelphia .",
    "The European Commission said on Thursday it disagreed with German advice to consumers .",
    "Peter Blackburn reports from Brussels .",
]


def build(use_crf: bool):
    torch.manual_seed(0)
    sentences = sorted((Sentence(t) for t in TEXTS), key=len, reverse=True)
    vocab = Dictionary(add_unk=True)
    for sentence in sentences:
        for token in sentence:
            vocab.add_item(token.text)
    tags = Dictionary(add_unk=False)
    for label in ("PER", "LOC", "ORG"):
        tags.add_item(label)
    tags.span_labels = True  # as corpus.make_label_dictionary("ner") marks NER labels: the tagger expands to BIOES
    embeddings = OneHotEmbeddings(vocab, embedding_length=64)
    tagger = SequenceTagger(
        hidden_size=128,
        embeddings=embeddings,
        tag_dictionary=tags,
        tag_type="ner",
        tag_format="BIOES",
        use_crf=use_crf,
    )
    tagger.eval()
    with torch.no_grad():
        sentence_tensor, lengths = tagger._prepare_tensors(sentences)
    axes = {"sentence_tensor": {0: "batch", 1: "tokens"}, "lengths": {0: "batch"}}
    return tagger, (sentence_tensor, lengths), axes


def make():
    return build(use_crf=True)
