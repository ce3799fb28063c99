"""export_module on the patterns real libraries' RNN models use (speechbrain, asteroid, stanza, pyannote.audio, flair,
torchaudio, the PyTorch tutorial): each written here the way that library writes it, reduced to the pattern.
The models themselves, built from the libraries' own classes, are in zoo/ (``bash scripts/zoo.sh``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence  # noqa: E402

from lstm_onnx.exporter.backends import OnnxReferenceBackend, OrtBackend  # noqa: E402
from lstm_onnx.exporter.module_export import export_module  # noqa: E402
from lstm_onnx.exporter.module_verify import assert_parity, judge, verify  # noqa: E402
from lstm_onnx.runtime.errors import ExportError  # noqa: E402

FAST = ("lowering", "torchscript")


def _ort(info: object) -> list[OrtBackend]:
    return [OrtBackend("ort-cpu", info.path)]  # type: ignore[attr-defined]


def _ids(batch: int = 3, steps: int = 9, vocab: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(1, vocab, (batch, steps), generator=generator), torch.tensor([9, 4, 6][:batch])


class FlattensParameters(nn.Module):
    """speechbrain / asteroid: ``self.rnn.flatten_parameters()`` at the top of every forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rnn.flatten_parameters()
        assert isinstance(self.rnn, nn.LSTM) and self.rnn.weight_ih_l0.shape == (24, 5)
        return self.rnn(x)[0]


class StanzaStyle(nn.Module):
    """stanza: a wrapper that tests ``isinstance(x, PackedSequence)``, applies dropout to ``.data`` and re-packs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(30, 6)
        self.rnn = nn.LSTM(6, 5, bidirectional=True, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(10, 4)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        if isinstance(x, PackedSequence):
            x = PackedSequence(self.drop(x.data), x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        y, _ = self.rnn(x)
        assert isinstance(y, PackedSequence)
        y = PackedSequence(torch.relu(y.data), y.batch_sizes, y.sorted_indices, y.unsorted_indices)
        return self.out(pad_packed_sequence(y, batch_first=True, total_length=ids.size(1))[0])


class Waveform(nn.Module):
    """pyannote.audio-style: waveform (B, 1, samples) → InstanceNorm1d + strided conv → LSTM → frame scores."""

    def __init__(self, channels: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.channels = channels
        self.norm = nn.InstanceNorm1d(1, affine=True)
        self.conv = nn.Conv1d(1, 8, kernel_size=40, stride=20)
        self.lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 3)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = waveforms if self.channels else waveforms.unsqueeze(1)
        frames = self.conv(self.norm(x)).transpose(1, 2)  # (B, frames, 8)
        return torch.log_softmax(self.head(self.lstm(frames)[0]), dim=-1)


class TutorialTagger(nn.Module):
    """The PyTorch sequence-models tutorial's LSTMTagger, as written there."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.word_embeddings = nn.Embedding(20, 6)
        self.lstm = nn.LSTM(6, 6)
        self.hidden2tag = nn.Linear(6, 3)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return torch.nn.functional.log_softmax(tag_space, dim=1)


class CrfTagger(nn.Module):
    """flair / BiLSTM-CRF taggers: emissions plus the CRF's transition matrix, an ``nn.Parameter``, as outputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(30, 6)
        self.rnn = nn.LSTM(6, 4, batch_first=True, bidirectional=True)
        self.emit = nn.Linear(8, 5)
        self.transitions = nn.Parameter(torch.randn(5, 5))
        with torch.no_grad():
            self.transitions[:, 0] = -10000.0  # flair's START/STOP constraints: huge magnitudes, 1-ulp differences

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=ids.size(1))
        return self.emit(out), self.transitions


class DeepSpeechRNN(nn.Module):
    """torchaudio's DeepSpeech: features → ``nn.RNN`` (relu), bidirectional, summed directions."""

    def __init__(self, nonlinearity: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(7, 6)
        self.bi_rnn = nn.RNN(6, 5, num_layers=2, nonlinearity=nonlinearity, bidirectional=True)
        self.out = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(x)).transpose(0, 1)  # (T, B, 6)
        x, _ = self.bi_rnn(x)
        x = x[:, :, :5] + x[:, :, 5:]
        return self.out(x).transpose(0, 1)


class NeedsContext(nn.Module):
    """An unpadded conv front end: needs at least 5 steps (speechbrain's CRDNN fails at T=1 the same way)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(4, 6, kernel_size=5)
        self.gru = nn.GRU(6, 5, batch_first=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.gru(self.conv(feats.transpose(1, 2)).transpose(1, 2))[1][-1]


class Vocoder(nn.Module):
    """WaveRNN-like coupled inputs: samples = (frames - 4) x hop."""

    hop = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(3, 4, kernel_size=5)  # frames -> frames - 4
        self.up = nn.Upsample(scale_factor=self.hop)
        self.rnn = nn.GRU(5, 6, batch_first=True)
        self.out = nn.Linear(6, 2)

    def forward(self, waveform: torch.Tensor, specgram: torch.Tensor) -> torch.Tensor:
        cond = self.up(self.conv(specgram)).transpose(1, 2)  # (B, samples, 4)
        x = torch.cat([waveform.unsqueeze(-1), cond], dim=-1)
        return self.out(self.rnn(x)[0])


def _vocoder_inputs(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch * 1000 + length)
    frames = length + 4
    return torch.randn(batch, length * Vocoder.hop, generator=generator), torch.randn(batch, 3, frames)


def test_an_rnn_keeps_its_own_methods_during_export(tmp_path: Path) -> None:
    model = FlattensParameters().eval()
    info = export_module(model, (torch.randn(2, 7, 5),), tmp_path / "m.onnx", methods=FAST)
    assert info.method == "lowering"
    assert assert_parity(model, info, (torch.randn(2, 7, 5),), backends=_ort(info)).backends[0].worst() <= 1e-5
    assert type(model.rnn) is nn.LSTM and "forward" not in vars(model.rnn)  # put back as it was


def test_a_repacking_wrapper_exports_exactly_and_padding_changes_nothing(tmp_path: Path) -> None:
    model = StanzaStyle().eval()
    example = _ids()
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    assert info.method == "lowering"
    record = assert_parity(model, info, example, backends=_ort(info)).backends[0]
    assert record.max_diff_padded_rows is not None and record.max_diff_padded_rows <= 1e-5


def test_user_axis_names_are_kept_and_shared(tmp_path: Path) -> None:
    model = StanzaStyle().eval()
    axes = {"ids": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}}
    info = export_module(model, _ids(), tmp_path / "m.onnx", dynamic_axes=axes, methods=FAST)
    assert (info.spec.batch, info.spec.primary) == ("batch", "seq")
    import onnx

    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in onnx.load(str(info.path)).graph.input
    }
    assert dims == {"ids": ["batch", "seq"], "lengths": ["batch"]}
    assert {b for b, _ in info.grid} >= {1, 4, 16} and max(t for _, t in info.grid) >= 27


@pytest.mark.parametrize("channels", [True, False], ids=["B-1-samples", "B-samples"])
def test_waveform_axes_are_measured_not_guessed(channels: bool, tmp_path: Path) -> None:
    model = Waveform(channels).eval()
    example = (torch.randn(2, 1, 4000) if channels else torch.randn(2, 4000),)
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    assert info.spec.axes == {"waveforms": {0: "batch_size", 2 if channels else 1: "sequence_length"}}
    assert any("TracerWarning" in n for n in info.notes) or info.method == "lowering"
    report = assert_parity(model, info, example, backends=_ort(info))
    assert {t for _, t in report.grid} >= {2000, 12000}  # half to three times the example's samples


def test_a_static_dim_the_model_runs_at_other_sizes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"'waveforms' axis 2 \(size 4000\) is not in dynamic_axes"):
        export_module(
            Waveform().eval(), (torch.randn(2, 1, 4000),), tmp_path / "m.onnx", dynamic_axes={"waveforms": {0: "b"}}
        )
    assert not (tmp_path / "m.onnx").exists()


def test_the_tutorial_tagger_exports_with_len_kept_symbolic(tmp_path: Path) -> None:
    model = TutorialTagger().eval()
    example = (torch.tensor([0, 1, 2, 3, 4]),)
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    assert info.spec.axes == {"sentence": {0: "sequence_length"}}
    session = OrtBackend("ort-cpu", info.path)
    for steps in (1, 12):
        sentence = torch.randint(0, 20, (steps,))
        got = session.run({"sentence": sentence.numpy()})[0]
        np.testing.assert_allclose(got, model(sentence).detach().numpy(), atol=1e-5)


def test_parameter_outputs_and_huge_values_pass_the_one_judge(tmp_path: Path) -> None:
    model = CrfTagger().eval()
    info = export_module(model, _ids(), tmp_path / "m.onnx", methods=FAST)
    record = assert_parity(model, info, _ids(), backends=_ort(info)).backends[0]
    assert record.worst_ratio() <= 1.0 and set(record.max_abs_diff) == {"output_0", "output_1"}


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_nn_rnn_is_lowered_to_the_onnx_rnn_op(nonlinearity: str, tmp_path: Path) -> None:
    import onnx

    model = DeepSpeechRNN(nonlinearity).eval()
    example = (torch.randn(2, 11, 7),)
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    assert info.method == "lowering"
    nodes = [n for n in onnx.load(str(info.path)).graph.node if n.op_type == "RNN"]
    assert len(nodes) == 2
    acts = {a.name: a.strings for a in nodes[0].attribute}["activations"]
    assert acts == [nonlinearity.capitalize().encode()] * 2
    report = assert_parity(model, info, example, backends=[*_ort(info), OnnxReferenceBackend(info.path)])
    assert report.backends[0].worst() <= 1e-5
    # The reference evaluator implements RNN with Tanh only: reported, not held against the export.
    assert report.backends[1].status == ("passed" if nonlinearity == "tanh" else "unsupported")


def test_the_grid_starts_at_the_shortest_length_the_model_accepts(tmp_path: Path) -> None:
    model = NeedsContext().eval()
    info = export_module(model, (torch.randn(3, 20, 4),), tmp_path / "m.onnx", methods=FAST)
    assert info.spec.min_length == 8 and min(t for _, t in info.grid) == 8  # 1, 2, 4 fail; 8 runs


def test_a_grid_point_the_model_fails_at_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"^The PyTorch model fails at grid point B=2, T=3: RuntimeError: .*grid\.$"):
        export_module(NeedsContext().eval(), (torch.randn(3, 20, 4),), tmp_path / "m.onnx", grid="1:20,2:3")


def test_coupled_inputs_come_from_make_inputs(tmp_path: Path) -> None:
    model = Vocoder().eval()
    example = _vocoder_inputs(2, 10)
    axes = {"waveform": {0: "batch", 1: "samples"}, "specgram": {0: "batch", 2: "frames"}}
    info = export_module(
        model, example, tmp_path / "m.onnx", dynamic_axes=axes, make_inputs=_vocoder_inputs, methods=FAST
    )
    assert info.spec.example_length == 10
    report = assert_parity(model, info, example, backends=_ort(info), grid=((1, 3), (3, 25)))
    assert report.backends[0].worst() <= 1e-5


def test_assert_parity_default_passes_and_reports_engines_that_ignore_padding(tmp_path: Path) -> None:
    model = StanzaStyle().eval()
    example = _ids()
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    report = assert_parity(model, info, example, backends=[*_ort(info), OnnxReferenceBackend(info.path)])
    assert [r.status for r in report.backends] == ["passed", "ignores-padding"]
    assert report.passed


def test_a_graph_wrong_on_padded_rows_is_never_passed(tmp_path: Path) -> None:
    model = StanzaStyle().eval()
    info = export_module(model, _ids(), tmp_path / "m.onnx", methods=FAST)
    report = judge(verify(model, info, _ids(), backends=[OnnxReferenceBackend(info.path)]))
    record = report.backends[0]
    record.honours_padding = True  # an engine that claims sequence_lens and gets padded rows wrong fails
    assert judge(report).backends[0].status == "failed"


@pytest.mark.slow
def test_the_dynamo_way_exports_and_is_verified(tmp_path: Path) -> None:
    model = FlattensParameters().eval()
    info = export_module(model, (torch.randn(2, 7, 5),), tmp_path / "m.onnx", methods=("dynamo",))
    assert info.method == "dynamo"
    assert assert_parity(model, info, (torch.randn(2, 7, 5),), backends=_ort(info)).backends[0].worst() <= 1e-5


class LanguageModel(nn.Module):
    """flair's LanguageModel: ``forward(input, hidden)`` with the LSTM state as one ``(h, c)`` tuple, time-major."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Embedding(40, 6)
        self.rnn = nn.LSTM(6, 5, num_layers=2)
        self.decoder = nn.Linear(5, 40)

    def forward(
        self, input: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.rnn.flatten_parameters()
        output, (h, c) = self.rnn(self.encoder(input), hidden)
        return self.decoder(output), h, c


def test_a_state_tuple_input_becomes_one_input_per_tensor(tmp_path: Path) -> None:
    model = LanguageModel().eval()
    example = (torch.randint(0, 40, (12, 3)), (torch.randn(2, 3, 5), torch.randn(2, 3, 5)))
    info = export_module(model, example, tmp_path / "m.onnx", methods=FAST)
    assert info.spec.names == ("input", "hidden_0", "hidden_1")
    assert info.spec.axes["hidden_0"] == {1: "batch_size"}
    report = assert_parity(model, info, example, backends=_ort(info))
    assert report.backends[0].worst() <= 1e-5
