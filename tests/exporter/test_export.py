"""Export: graph shape and contract, dynamic axes, batch invariance on ORT, eager twin equals the trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lstm_onnx.exporter.export import check_graph, export_onnx, export_twin
from lstm_onnx.exporter.module_export import export_module
from lstm_onnx.exporter.onnx_module import OnnxExportClassifier
from lstm_onnx.runtime.contract import CLASSIFY_IO, INPUT_IDS, LENGTHS, LOGITS, MANIFEST_FILE, MODEL_FILE
from lstm_onnx.runtime.errors import ExportError
from lstm_onnx.trainer.run_dir import load_run
from tests.exporter._exporter_runs import make_run_dir


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _batch(lengths: list[int], vocab_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lens = np.array(lengths, dtype=np.int64)
    ids = rng.integers(1, vocab_size, size=(len(lens), int(lens.max())), dtype=np.int64)
    ids[np.arange(ids.shape[1])[None, :] >= lens[:, None]] = 0
    return ids, lens


def _torch(run_dir: Path, ids: np.ndarray, lens: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return load_run(run_dir).model(torch.from_numpy(ids), torch.from_numpy(lens)).numpy()


@pytest.mark.parametrize(("kind", "order"), [("LSTM", [0, 1, 6, 7, 2, 3, 4, 5]), ("GRU", [2, 3, 0, 1, 4, 5])])
def test_gate_order_round_trips(kind: str, order: list[int]) -> None:
    from lstm_onnx.exporter.rnn_nodes import _onnx_gates

    w = torch.arange(float(len(order))).reshape(len(order), 1)
    assert _onnx_gates(w, kind).flatten().tolist() == order
    assert torch.equal(_onnx_gates(_onnx_gates(w, kind), kind, inverse=True), w)


@pytest.mark.parametrize(
    "settings",
    [{}, {"num_layers": 2, "pooling": ("last", "max", "mean")}, {"bidirectional": False, "pooling": ("last",)}],
    ids=["bi-1layer", "bi-2layers-all-poolings", "uni-last"],
)
def test_export_module_matches_trained_model_in_eager(tmp_path: Path, settings: dict[str, object]) -> None:
    run = load_run(make_run_dir(tmp_path, **settings))
    ids, lens = _batch([5, 1, 12, 7], run.model_config.vocab_size)
    with torch.inference_mode():
        want = run.model(torch.from_numpy(ids), torch.from_numpy(lens))
        got = OnnxExportClassifier(run.model)(torch.from_numpy(ids), torch.from_numpy(lens))
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [{"num_layers": 2, "pooling": ("last", "max", "mean")}, {"bidirectional": False, "pooling": ("last",)}],
    ids=["bi-2layers", "uni-last"],
)
def test_export_onnx_one_lstm_node_per_layer_with_sequence_lens(tmp_path: Path, settings: dict[str, object]) -> None:
    run = load_run(make_run_dir(tmp_path / "run", **settings))
    export_onnx(run.model, tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    lstms = [n for n in graph.node if n.op_type == "LSTM"]
    assert len(lstms) == run.model_config.num_layers
    assert all(n.input[4] for n in lstms)
    direction = [a.s.decode() for a in lstms[0].attribute if a.name == "direction"]
    assert direction == ["bidirectional" if run.model_config.bidirectional else "forward"]


def test_export_onnx_rejects_old_opset(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path / "run"))
    with pytest.raises(ExportError, match="opset >= 14"):
        export_onnx(run.model, tmp_path / "m.onnx", opset=13)


def test_check_graph_rejects_wrong_label_count(tiny_bundle_dir: Path) -> None:
    model = onnx.load(str(tiny_bundle_dir / MODEL_FILE))
    with pytest.raises(ExportError, match="Graph outputs"):
        check_graph(model, num_labels=3, num_layers=1)


def test_bundle_io_matches_manifest(tiny_bundle_dir: Path) -> None:
    manifest = json.loads((tiny_bundle_dir / MANIFEST_FILE).read_text())
    session = _session(tiny_bundle_dir / MODEL_FILE)
    for declared, actual in zip(manifest["io"]["inputs"], session.get_inputs(), strict=True):
        assert (declared["name"], declared["shape"]) == (actual.name, actual.shape)
    assert [o.name for o in session.get_outputs()] == [LOGITS]
    assert manifest["io"]["outputs"][0]["shape"] == session.get_outputs()[0].shape
    assert manifest["export"]["exporter_mode"] == "torchscript"


@pytest.mark.parametrize(
    "lengths",
    [[1], [3, 40], [9] * 5, [1, 2, 3, 4, 5, 6, 7], [50, 3, 17, 1, 33, 8]],
    ids=["b1-len1", "b2-mixed", "all-one-length", "all-different", "unsorted"],
)
def test_bundle_dynamic_shapes_match_torch(tiny_bundle_dir: Path, tiny_run_dir: Path, lengths: list[int]) -> None:
    vocab_size = load_run(tiny_run_dir).model_config.vocab_size
    ids, lens = _batch(lengths, vocab_size)
    got = _session(tiny_bundle_dir / MODEL_FILE).run([LOGITS], {INPUT_IDS: ids, LENGTHS: lens})[0]
    np.testing.assert_allclose(got, _torch(tiny_run_dir, ids, lens), atol=1e-5, rtol=1e-4)


def test_bundle_score_ignores_batch_neighbours_and_padding(tiny_bundle_dir: Path, tiny_run_dir: Path) -> None:
    vocab_size = load_run(tiny_run_dir).model_config.vocab_size
    ids, lens = _batch([6, 80, 2, 31], vocab_size, seed=3)
    session = _session(tiny_bundle_dir / MODEL_FILE)
    batch = session.run([LOGITS], {INPUT_IDS: ids, LENGTHS: lens})[0]
    for row, length in enumerate(lens):
        alone = session.run([LOGITS], {INPUT_IDS: ids[row : row + 1, :length], LENGTHS: lens[row : row + 1]})[0]
        np.testing.assert_allclose(batch[row : row + 1], alone, atol=1e-6, rtol=1e-5)


def test_export_module_takes_the_twin_as_a_lowered_rnn(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path / "run", num_layers=2))
    ids, lens = _batch([7, 3], run.model_config.vocab_size)
    info = export_module(
        OnnxExportClassifier(run.model), (torch.from_numpy(ids), torch.from_numpy(lens)), tmp_path / "m.onnx"
    )
    assert info.spec.names == (INPUT_IDS, LENGTHS)
    assert info.rnn_nodes == (("<root>", "LSTM", 2),)


def test_export_module_holds_a_lowered_rnn_to_its_declared_layers(tmp_path: Path) -> None:
    run = load_run(make_run_dir(tmp_path / "run"))
    twin = OnnxExportClassifier(run.model)
    twin.lowered_layers = 2  # the twin emits one LSTM node; the graph check must notice the mismatch
    ids, lens = _batch([7, 3], run.model_config.vocab_size)
    with pytest.raises(ExportError, match="Expected 2 ONNX LSTM/GRU/RNN node"):
        export_module(twin, (torch.from_numpy(ids), torch.from_numpy(lens)), tmp_path / "m.onnx")
    twin.lowered_layers = 0
    with pytest.raises(ExportError, match="LoweredRNN must emit"):
        export_module(twin, (torch.from_numpy(ids), torch.from_numpy(lens)), tmp_path / "m.onnx")


def test_export_twin_refuses_forward_names_outside_the_io_spec(tmp_path: Path) -> None:
    class Renamed(OnnxExportClassifier):
        def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return super().forward(ids, lengths)

    run = load_run(make_run_dir(tmp_path / "run"))
    ids, lens = _batch([7, 3], run.model_config.vocab_size)
    with pytest.raises(ExportError, match=r"forward takes \['ids', 'lengths'\].*needs \['input_ids', 'lengths'\]"):
        export_twin(
            Renamed(run.model),
            (torch.from_numpy(ids), torch.from_numpy(lens)),
            tmp_path / "m.onnx",
            opset=17,
            spec=CLASSIFY_IO,
            num_labels=2,
        )
