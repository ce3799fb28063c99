from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_onnx.runtime.contract import INPUT_IDS, MODEL_FILE
from lstm_onnx.runtime.errors import ConfigError, ProviderError
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
    with pytest.raises(ValueError, match=rf"{field} must be an int (>= 1|in 1\.\.256)"):
        SessionConfig(**{field: 0})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["intra_op_threads", "inter_op_threads", "batch_threads"])
def test_session_config_rejects_threads_over_the_ceiling(field: str) -> None:
    # ORT builds every thread asked for: threads=10**6 grew to 22.7 GB before it was killed.
    with pytest.raises(ConfigError, match=rf"{field} must be an int in 1\.\.256( or None)?, got 1000000"):
        SessionConfig(**{field: 10**6})  # type: ignore[arg-type]


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


# ------------------------------------------------------------------ ONNX Runtime's own failures: one line, no traceback
def _resealed_copy(bundle: Path, tmp_path: Path, model: bytes) -> Path:
    """A copy of ``bundle`` whose model.onnx is ``model``, its checksum recorded: only ORT can object to it."""
    import hashlib
    import json
    import shutil

    copy = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    (copy / MODEL_FILE).write_bytes(model)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"][MODEL_FILE].update(sha256=hashlib.sha256(model).hexdigest(), bytes=len(model))
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return copy


def _edited_graph(bundle: Path, edit: Any) -> bytes:
    import onnx

    model = onnx.load(str(bundle / MODEL_FILE))
    edit(model)
    return model.SerializeToString()  # type: ignore[no-any-return]


def _append_after_output(model: Any, op: str, inputs: list[str], **attrs: Any) -> None:
    """Route the graph's output through one more node ``op(output, *inputs)``."""
    from onnx import helper

    last = next(n for n in model.graph.node if model.graph.output[0].name in n.output)
    name = model.graph.output[0].name
    last.output[list(last.output).index(name)] = f"{name}_before"
    model.graph.node.append(helper.make_node(op, [f"{name}_before", *inputs], [name], **attrs))


def _custom_op(model: Any) -> None:
    from onnx import helper

    _append_after_output(model, "Frobnicate", [], domain="com.example")
    model.opset_import.append(helper.make_opsetid("com.example", 1))


def _huge_expand(model: Any) -> None:
    from onnx import TensorProto, helper

    model.graph.initializer.append(helper.make_tensor("huge_shape", TensorProto.INT64, [2], [1, 2**62]))
    _append_after_output(model, "Expand", ["huge_shape"])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("garbage", "Protobuf parsing failed"),
        ("truncated", "Protobuf parsing failed"),
        ("custom op", "com.example:Frobnicate.* is not a registered function/op"),
        ("2**62 expand", "ShapeInferenceError"),
    ],
)
def test_model_onnx_that_onnx_runtime_cannot_load_is_one_line(
    tiny_bundle_dir: Path, tmp_path: Path, case: str, message: str
) -> None:
    from typer.testing import CliRunner

    from lstm_onnx.cli import app
    from lstm_onnx.runtime.bundle import load_bundle
    from lstm_onnx.runtime.errors import BundleError

    whole = (tiny_bundle_dir / MODEL_FILE).read_bytes()
    model = {
        "garbage": lambda: b"this is not an ONNX model" * 20,
        "truncated": lambda: whole[: len(whole) // 2],
        "custom op": lambda: _edited_graph(tiny_bundle_dir, _custom_op),
        "2**62 expand": lambda: _edited_graph(tiny_bundle_dir, _huge_expand),
    }[case]()
    bundle = _resealed_copy(tiny_bundle_dir, tmp_path, model)
    with pytest.raises(BundleError, match=f"ONNX Runtime cannot load .*model.onnx: .*{message}"):
        load_bundle(bundle, SessionConfig(providers="cpu"))
    result = CliRunner().invoke(app, ["predict", str(bundle), "a great film"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ONNX Runtime cannot load") and result.stderr.count("\n") == 1


def test_a_fixed_2_to_the_62_dimension_is_refused_at_load(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    from lstm_onnx.runtime.bundle import load_bundle
    from lstm_onnx.runtime.errors import BundleError

    def fixed(model: Any) -> None:
        dim = model.graph.input[0].type.tensor_type.shape.dim[1]
        dim.ClearField("dim_param")
        dim.dim_value = 2**62

    bundle = _resealed_copy(tiny_bundle_dir, tmp_path, _edited_graph(tiny_bundle_dir, fixed))
    with pytest.raises(BundleError, match=r"input_ids has the fixed size 4611686018427387904 on axis 1.*'sequence_len"):
        load_bundle(bundle, SessionConfig(providers="cpu"))


def test_a_graph_that_fails_when_run_is_one_line(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    from onnx import TensorProto, helper
    from typer.testing import CliRunner

    from lstm_onnx.cli import app
    from lstm_onnx.runtime.errors import BundleError

    def shifted_ids(model: Any) -> None:
        # The ids reach the embedding shifted past its end: loads and passes every check, fails on every call.
        gather = next(n for n in model.graph.node if n.op_type == "Gather")
        model.graph.initializer.append(helper.make_tensor("shift", TensorProto.INT64, [], [10**6]))
        model.graph.node.insert(0, helper.make_node("Add", [INPUT_IDS, "shift"], ["shifted_ids"]))
        gather.input[1] = "shifted_ids"

    bundle = _resealed_copy(tiny_bundle_dir, tmp_path, _edited_graph(tiny_bundle_dir, shifted_ids))
    session = create_session(bundle / MODEL_FILE, SessionConfig(providers="cpu"))
    with pytest.raises(BundleError, match=r"ONNX Runtime failed to run .*model.onnx on input_ids \(1, 2\), lengths"):
        session.run(np.array([[2, 3]], np.int64), np.array([2], np.int64))
    result = CliRunner().invoke(app, ["predict", str(bundle), "a great film"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ONNX Runtime failed to run") and result.stderr.count("\n") == 1
    assert "out of data bounds" in result.stderr
