from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_onnx.runtime.contract import MODEL_FILE
from lstm_onnx.runtime.errors import ProviderError
from lstm_onnx.runtime.session import (
    _LSTM_PROBE,
    BATCH_MIN_ROWS,
    BATCH_THREADS,
    CPU,
    CUDA,
    SessionConfig,
    create_session,
    probe_cuda,
    runtime_session_config,
)

CUDA_USABLE, CUDA_REASON = probe_cuda(SessionConfig(providers="cpu"))


def test_session_config_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="Unknown provider 'tpu'"):
        SessionConfig(providers="tpu")


@pytest.mark.parametrize("field", ["intra_op_threads", "inter_op_threads", "batch_threads", "batch_min_rows"])
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


def test_runtime_default_threads_one_for_small_calls_two_for_batches() -> None:
    default = runtime_session_config("cpu", None)
    assert (default.intra_op_threads, default.batch_threads, default.batch_min_rows) == (1, BATCH_THREADS, 8)
    explicit = runtime_session_config("cpu", 3)  # a caller's thread count holds for every call (scoring workers: 1)
    assert (explicit.intra_op_threads, explicit.batch_threads, explicit.wide_threads()) == (3, None, None)


def test_batch_session_serves_large_calls_with_the_same_logits(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    session = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", None))
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 30, (BATCH_MIN_ROWS, 33)).astype(np.int64)
    lengths = rng.integers(1, 34, BATCH_MIN_ROWS).astype(np.int64)
    ids[np.arange(33)[None, :] >= lengths[:, None]] = 0
    alone = np.concatenate([session.run(ids[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(len(ids))])
    assert session._wide is None  # calls below BATCH_MIN_ROWS rows never build the batch session
    batched = session.run(ids, lengths)
    assert session._wide is not None
    np.testing.assert_array_equal(batched, alone)  # two threads split the GEMMs, never a sum: bit-identical


def test_batch_session_not_built_on_one_core_or_when_threads_are_given(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, lengths = np.full((BATCH_MIN_ROWS, 4), 3, np.int64), np.full(BATCH_MIN_ROWS, 4, np.int64)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    one_core = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", None))
    given = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", 1))
    for session in (one_core, given):
        session.run(ids, lengths)
        assert session._wide is None


def test_batch_session_is_built_from_the_model_as_loaded_not_the_path(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    model = tmp_path / MODEL_FILE
    model.write_bytes((tiny_bundle_dir / MODEL_FILE).read_bytes())
    session = create_session(model, runtime_session_config("cpu", None))
    ids, lengths = np.full((BATCH_MIN_ROWS, 4), 3, np.int64), np.full(BATCH_MIN_ROWS, 4, np.int64)
    expected = session.run(ids[:1], lengths[:1])
    model.write_bytes(b"not a model")  # changed after the bundle's checks: the batch session must not read it
    np.testing.assert_array_equal(session.run(ids, lengths), np.repeat(expected, BATCH_MIN_ROWS, axis=0))
