from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_onnx.runtime.contract import MODEL_FILE
from lstm_onnx.runtime.errors import ProviderError
from lstm_onnx.runtime.session import _LSTM_PROBE, CPU, CUDA, SessionConfig, create_session, probe_cuda

CUDA_USABLE, CUDA_REASON = probe_cuda(SessionConfig(providers="cpu"))


def test_session_config_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="Unknown provider 'tpu'"):
        SessionConfig(providers="tpu")


@pytest.mark.parametrize("field", ["intra_op_threads", "inter_op_threads"])
def test_session_config_rejects_zero_threads(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be an int >= 1"):
        SessionConfig(**{field: 0})  # type: ignore[arg-type]


def test_create_session_cpu_runs_on_cpu(tiny_bundle_dir: Path) -> None:
    session = create_session(tiny_bundle_dir / MODEL_FILE, SessionConfig(providers="cpu"))
    assert session.provider == CPU and session.session.get_providers() == [CPU]
    logits = session.run(np.array([[2, 3, 0]], np.int64), np.array([2], np.int64))
    assert logits.shape == (1, 2) and logits.dtype == np.float32


@pytest.mark.skipif(CUDA_USABLE, reason="CUDA really works here; the refusal path cannot be shown")
def test_create_session_cuda_request_fails_loudly_without_gpu(tiny_bundle_dir: Path) -> None:
    with pytest.raises(ProviderError, match=f"Provider '{CUDA}' is not available; available: {CPU}"):
        create_session(tiny_bundle_dir / MODEL_FILE, SessionConfig(providers="cuda"))


def test_create_session_auto_says_which_provider_and_why(tiny_bundle_dir: Path) -> None:
    session = create_session(tiny_bundle_dir / MODEL_FILE, SessionConfig(providers="auto"))
    assert session.provider == (CUDA if CUDA_USABLE else CPU)
    assert session.provider_note.startswith("auto: ") and CUDA_REASON in session.provider_note


def test_lstm_probe_graph_is_the_documented_one() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = [
        numpy_helper.from_array(np.full((1, 8, 2), 0.1, np.float32), "W"),
        numpy_helper.from_array(np.full((1, 8, 2), 0.1, np.float32), "R"),
    ]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["X", "W", "R", "", "seq"], ["Y"], hidden_size=2)],
        "lstm_probe",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 1, 2]),
            helper.make_tensor_value_info("seq", TensorProto.INT32, [1]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 1, 1, 2])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lstm-onnx")
    model.ir_version = 8
    assert model.SerializeToString() == _LSTM_PROBE
    onnx.checker.check_model(onnx.load_from_string(_LSTM_PROBE))
