from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_onnx.runtime.contract import INPUT_IDS, MODEL_FILE
from lstm_onnx.runtime.errors import ProviderError
from lstm_onnx.runtime.session import (
    _LSTM_PROBE,
    BATCH_MIN_TOKENS,
    BATCH_THREADS,
    CPU,
    CUDA,
    ModelSession,
    SessionConfig,
    create_session,
    probe_cuda,
    runtime_session_config,
)

CUDA_USABLE, CUDA_REASON = probe_cuda(SessionConfig(providers="cpu"))


def test_session_config_rejects_unknown_provider() -> None:
    with pytest.raises(ValueError, match="Unknown provider 'tpu'"):
        SessionConfig(providers="tpu")


@pytest.mark.parametrize(
    "field", ["intra_op_threads", "inter_op_threads", "batch_threads", "batch_min_rows", "batch_min_tokens"]
)
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


def test_runtime_default_threads_one_for_small_calls_two_for_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    default = runtime_session_config("cpu", None)
    assert (default.intra_op_threads, default.batch_threads, default.batch_min_rows) == (1, BATCH_THREADS, 2)
    assert default.batch_min_tokens == BATCH_MIN_TOKENS == 512
    assert default.row_parts() == 2
    explicit = runtime_session_config("cpu", 3)  # a caller's thread count holds for every call (scoring workers: 1)
    assert (explicit.intra_op_threads, explicit.batch_threads, explicit.row_parts()) == (3, None, 1)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert runtime_session_config("cpu", None).row_parts() == 1  # one core: nothing to split over


def _record_calls(session: ModelSession) -> list[int]:
    """Wrap the ORT session's ``run`` so each call's batch size is recorded (in call order)."""
    rows: list[int] = []
    inner = session.session.run

    def run(outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        rows.append(len(feeds[INPUT_IDS]))
        return inner(outputs, feeds)

    session.session.run = run
    return rows


def test_large_calls_run_as_concurrent_parts_with_the_same_logits(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    session = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", None))
    rng = np.random.default_rng(0)
    rows, steps = 9, 70  # odd: parts of 4 and 5 consecutive rows; 630 padded tokens
    ids = rng.integers(2, 30, (rows, steps)).astype(np.int64)
    lengths = rng.integers(1, steps + 1, rows).astype(np.int64)
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    alone = np.concatenate([session.run(ids[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(rows)])
    calls = _record_calls(session)
    session.run(ids[:7, : steps // 2], lengths[:7].clip(max=steps // 2))  # 245 padded tokens: one call, whole
    session.run(ids[:1], lengths[:1])  # one row: nothing to cut
    assert calls == [7, 1]
    batched = session.run(ids, lengths)
    assert sorted(calls[2:]) == [4, 5]
    np.testing.assert_array_equal(batched, alone)  # rows never interact: the parts' logits are one call's, bit for bit


def test_calls_run_whole_on_one_core_or_when_threads_are_given(
    tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, lengths = np.full((8, 64), 3, np.int64), np.full(8, 64, np.int64)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    one_core = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", None))
    given = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", 1))
    for session in (one_core, given):
        calls = _record_calls(session)
        session.run(ids, lengths)
        assert calls == [8]


def test_an_error_in_one_part_is_raised_to_the_caller(tiny_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    session = create_session(tiny_bundle_dir / MODEL_FILE, runtime_session_config("cpu", None))
    ids, lengths = np.full((8, 64), 3, np.int64), np.full(8, 64, np.int64)
    ids[-1, 0] = 10**9  # an id past the embedding, in the second part only
    calls = _record_calls(session)
    with pytest.raises(Exception, match="(?i)indices|out of bounds|invalid"):
        session.run(ids, lengths)
    assert sorted(calls) == [4, 4]  # both parts ran; the failing one's error reached the caller
    np.testing.assert_array_equal(session.run(ids[:4], lengths[:4]), session.run(ids[:1], lengths[:1]).repeat(4, 0))


def test_tagger_batches_run_as_parts_with_the_same_logits(
    tiny_tag_bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstm_onnx.runtime.tagger import TokenTagger

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    tagger = TokenTagger.load(tiny_tag_bundle_dir, providers="cpu")
    sentences = [["The", "cat", "sat"][: 1 + i % 3] + ["down"] * (60 + i % 4) for i in range(10)]  # 10 x 66 tokens
    calls = _record_calls(tagger.bundle.session)
    batched = tagger.logits(sentences)
    assert sorted(calls) == [5, 5]
    for i, sentence in enumerate(sentences):  # each sentence alone: the same logits at its positions, bit for bit
        np.testing.assert_array_equal(tagger.logits([sentence])[0, : len(sentence)], batched[i, : len(sentence)])


def test_batches_run_on_the_model_as_loaded_not_the_path(
    tiny_bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    model = tmp_path / MODEL_FILE
    model.write_bytes((tiny_bundle_dir / MODEL_FILE).read_bytes())
    session = create_session(model, runtime_session_config("cpu", None))
    ids, lengths = np.full((8, 64), 3, np.int64), np.full(8, 64, np.int64)
    expected = session.run(ids[:1], lengths[:1])
    model.write_bytes(b"not a model")  # changed after the bundle's checks: a batch must never read it
    calls = _record_calls(session)
    np.testing.assert_array_equal(session.run(ids, lengths), np.repeat(expected, 8, axis=0))
    assert calls == [4, 4]


@pytest.mark.parametrize(("tf32", "flag"), [(False, "0"), (True, "1")])
def test_session_config_cuda_options_keep_tf32_off_by_default(tf32: bool, flag: str) -> None:
    """ONNX Runtime's CUDA provider runs float32 Gemm in TF32 unless told not to; fp32 parity needs it off."""
    assert SessionConfig().cuda_options()["use_tf32"] == "0"
    assert SessionConfig(device_id=1, cuda_tf32=tf32).cuda_options() == {"device_id": 1, "use_tf32": flag}


def test_probe_cuda_names_every_driver_sign_it_looked_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import lstm_onnx.runtime.session as session_module

    monkeypatch.setattr(session_module, "_available", lambda: [CUDA, CPU])  # as onnxruntime-gpu lists them
    missing = (tmp_path / "proc-version", tmp_path / "nvidiactl")
    monkeypatch.setattr(session_module, "_NVIDIA_DRIVER", missing)
    usable, reason = probe_cuda(SessionConfig())
    assert not usable and "proc-version and" in reason and "nvidiactl are missing" in reason
