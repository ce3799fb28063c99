"""``python -m lstm_onnx``: the ``lstm-onnx`` command."""

from __future__ import annotations

from lstm_onnx.cli import app

app(prog_name="lstm-onnx")
