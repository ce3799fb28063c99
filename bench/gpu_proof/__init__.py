"""The GPU proof kit: one command that trains, exports, verifies and times the classifier on a lent GPU.

Stages, in order, each within its own time budget and all within a total one (``config.Budgets``):

1. ``environment``: GPU name, driver, versions, TF32 settings, and whether the installed ``lstm_onnx`` is this
   checkout's code.
2. ``train``: ``lstm-onnx train --preset gpu`` (cuDNN, mixed precision) on the labelled IMDB reviews, tokenizing
   on every core, tokenizer rules pinned from a file (the GPU machine has no spaCy): seconds per epoch, test
   accuracy. Epochs that would overrun the budget are stopped and the kept weights tested.
3. ``export``: fp32 and fp16 bundles (``lstm-onnx export --fp16``), verified on the CPU.
4. ``graphs``: what the graphs ask of ONNX Runtime's CUDA provider (LSTM layout 0, int32 ``sequence_lens``,
   constant weights, fp16 LSTM with float32 logits).
5. ``verify``: ``lstm-onnx verify`` with the GPU visible (ORT CUDA and CPU against PyTorch on the CPU).
6. ``parity``: PyTorch on the GPU (TF32 off) against ORT CUDA and CPU, fp32 and fp16, on generated cases and real
   reviews; where every LSTM node really ran (ORT's profiler).
7. ``speed``: ORT CUDA (IO binding) fp32/fp16 against PyTorch CUDA eager and compiled, batches of 1/32/256 real
   reviews, interleaved.
8. ``end_to_end``: reviews/s, text in and probabilities out, tokenizing on one core and on every core.
9. ``tagger`` (if time allows): the tagging ``gpu`` preset, trained and exported.

``--device cpu --tiny`` runs every stage on the CPU in well under a minute (the CI dry run); the lines that need
CUDA are the ``device == "cuda"`` branches. Results go to ``benchmarks/results/gpu-proof-*.json`` and ``.md``.
"""

from __future__ import annotations

__all__ = ["ProofConfig", "run_proof"]

from lstm_onnx.bench.gpu_proof.config import ProofConfig
from lstm_onnx.bench.gpu_proof.run import run_proof
