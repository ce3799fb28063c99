"""export_module and export-module on models written as users write them, and on hostile input: each either exports
with parity on ONNX Runtime or is refused in one line naming the reason (never a deep traceback, never a wrong
graph left behind)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from lstm_onnx.cli import app  # noqa: E402
from lstm_onnx.exporter.backends import OrtBackend  # noqa: E402
from lstm_onnx.exporter.module_export import export_module  # noqa: E402
from lstm_onnx.exporter.module_verify import assert_parity  # noqa: E402
from lstm_onnx.runtime.errors import ExportError  # noqa: E402

GRID = ((1, 1), (4, 9))
VOCAB = 40


def _example() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(1, VOCAB, (3, 7), generator=torch.Generator().manual_seed(0)), torch.tensor([3, 7, 5])


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(VOCAB, 6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]


class KeywordDefaults(Encoder):
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, *, scale: float = 2.0) -> torch.Tensor:
        return self.encode(ids, lengths) * scale


class DictOut(Encoder):
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encode(ids, lengths)
        return {"logits": h.sum(-1, keepdim=True), "hidden": h}


class Shared(Encoder):
    def forward(
        self, a: torch.Tensor, a_lengths: torch.Tensor, b: torch.Tensor, b_lengths: torch.Tensor
    ) -> torch.Tensor:
        return (self.encode(a, a_lengths) * self.encode(b, b_lengths)).sum(-1)


class ReadsPackedData(Encoder):
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False))
        out = PackedSequence(out.data * 2, out.batch_sizes, out.sorted_indices, out.unsorted_indices)
        return pad_packed_sequence(out, batch_first=True)[0]


def _parity(model: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> float:
    info = export_module(model, example, path)
    report = assert_parity(model, info, example, backends=[OrtBackend("ort-cpu", info.path)], grid=GRID)
    return report.backends[0].worst()


def test_export_module_accepts_keyword_only_and_default_parameters(tmp_path: Path) -> None:
    assert _parity(KeywordDefaults().eval(), _example(), tmp_path / "m.onnx") <= 1e-5
    assert [i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input] == ["ids", "lengths"]


def test_export_module_names_dict_outputs_after_their_keys(tmp_path: Path) -> None:
    model = DictOut().eval()
    info = export_module(model, _example(), tmp_path / "m.onnx")
    assert info.output_names == ("logits", "hidden")
    assert assert_parity(model, info, _example(), backends=[OrtBackend("ort-cpu", info.path)], grid=GRID).passed


def test_export_module_exports_an_rnn_called_twice(tmp_path: Path) -> None:
    a, a_lengths = _example()
    example = (a, a_lengths, a[:, :5].flip(0), torch.tensor([5, 2, 4]))
    assert _parity(Shared().eval(), example, tmp_path / "m.onnx") <= 1e-5
    nodes = [n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == "LSTM"]
    assert len(nodes) == 2 and all(n.input[4] for n in nodes)


def test_export_module_patches_pack_bound_in_a_helper_module(tmp_path: Path) -> None:
    helper = types.ModuleType("user_rnn_helpers")
    exec(  # a helper module outside the model's own file binding the packing function under another name
        "from torch.nn.utils.rnn import pack_padded_sequence as pk\n"
        "def encode(lstm, x, lengths):\n"
        "    return lstm(pk(x, lengths, batch_first=True, enforce_sorted=False))[1][0][-1]\n",
        helper.__dict__,
    )

    class Helped(Encoder):
        def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return helper.encode(self.lstm, self.emb(ids), lengths)  # type: ignore[no-any-return]

    sys.modules["user_rnn_helpers"] = helper
    try:
        assert _parity(Helped().eval(), _example(), tmp_path / "m.onnx") <= 1e-5
    finally:
        del sys.modules["user_rnn_helpers"]


def test_export_module_keeps_a_repacked_sequence_exact(tmp_path: Path) -> None:
    # stanza-style: the RNN's packed output is re-wrapped as PackedSequence(f(out.data), out.batch_sizes, ...).
    assert _parity(ReadsPackedData().eval(), _example(), tmp_path / "m.onnx") <= 1e-5


def test_export_module_warns_and_exports_a_model_in_train_mode(tmp_path: Path) -> None:
    model = KeywordDefaults().train()
    with pytest.warns(UserWarning, match="was in training mode"):
        info = export_module(model, _example(), tmp_path / "m.onnx")
    assert not model.training
    assert assert_parity(model, info, _example(), backends=[OrtBackend("ort-cpu", info.path)], grid=GRID).passed


@pytest.mark.parametrize(
    ("model", "example", "axes", "phrase"),
    [
        (lambda ids, lengths: ids, _example(), None, "not a torch.nn.Module"),
        (KeywordDefaults(), (_example()[0], torch.tensor([3, 7, 5, 2])), None, "forward failed on the example inputs"),
        (KeywordDefaults(), _example(), {"nope": {0: "batch_size"}}, r"dynamic_axes names \['nope'\]"),
    ],
    ids=["not-a-module", "forward-raises", "unknown-axes-name"],
)
def test_export_module_refuses_bad_arguments_in_one_line(
    model: object,
    example: tuple[torch.Tensor, ...],
    axes: dict[str, dict[int, str]] | None,
    phrase: str,
    tmp_path: Path,
) -> None:
    if isinstance(model, nn.Module):
        model.eval()
    with pytest.raises(ExportError, match=phrase) as caught:
        export_module(model, example, tmp_path / "m.onnx", dynamic_axes=axes)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


GOOD_FILE = """
import torch
from sibling import Net


def make():
    torch.manual_seed(0)
    return Net().eval(), [torch.randint(1, 30, (3, 6)), torch.tensor([4, 6, 1])]
"""
SIBLING = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 4)
        self.rnn = nn.GRU(4, 3, batch_first=True)

    def forward(self, ids, lengths):
        return self.rnn(pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False))[1][-1]
"""


def test_export_module_cli_imports_the_model_files_siblings(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(GOOD_FILE, encoding="utf-8")
    (tmp_path / "sibling.py").write_text(SIBLING, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export-module", f"{tmp_path / 'net.py'}:make", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert (out / "model.onnx").is_file()
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    ("source", "factory", "phrase"),
    [
        ("def make(:\n    pass\n", "make", "line 1: SyntaxError"),
        ("import not_a_module_xyz\n", "make", "Importing net.py raised ModuleNotFoundError"),
        (
            "def make():\n    raise RuntimeError('no data')\n",
            "make",
            r"make\(\) in net.py raised RuntimeError: no data",
        ),
        ("def make():\n    return 3\n", "make", r"make\(\) returned a int"),
        ("make = 3\n", "make", "has no callable 'make'"),
        ("def make():\n    return 1, 2, ['ids']\n", "make", r"returned dynamic_axes .*expected {input name"),
    ],
    ids=["syntax-error", "import-error", "factory-raises", "not-a-tuple", "not-callable", "bad-axes"],
)
def test_export_module_cli_reports_a_broken_model_file_in_one_line(
    source: str, factory: str, phrase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("net.py").write_text(source, encoding="utf-8")
    result = CliRunner().invoke(app, ["export-module", f"net.py:{factory}", "--out", "out"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert phrase in result.stderr or __import__("re").search(phrase, result.stderr)


def test_export_module_cli_refuses_out_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(GOOD_FILE, encoding="utf-8")
    (tmp_path / "out").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["export-module", f"{tmp_path / 'net.py'}:make", "--out", str(tmp_path / "out"), "--force"]
    )
    assert result.exit_code == 1
    assert "is a file or link" in result.stderr
    assert (tmp_path / "out").read_text(encoding="utf-8") == "x"


def test_export_module_cli_force_never_deletes_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(GOOD_FILE, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(app, ["export-module", f"{tmp_path / 'net.py'}:make", "--out", str(out), "--force"])
    assert result.exit_code == 1
    assert "did not write (notes.txt)" in result.stderr
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
