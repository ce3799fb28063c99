"""The runtime never needs torch (nor trainer/exporter), and never imports spaCy when serving a bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Importing torch raises ImportError in these subprocesses, as on a machine without torch.
_BLOCK_TORCH = "import sys; sys.modules['torch'] = None\n"
_WATCHED = ("torch", "spacy", "lstm_onnx.trainer", "lstm_onnx.exporter", "thinc")
_REPORT = f"print(json.dumps({{m: m in sys.modules for m in {_WATCHED!r}}}))\n"


def _python(code: str) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_runtime_predicts_where_torch_cannot_be_imported(tiny_bundle_dir: Path) -> None:
    code = (
        _BLOCK_TORCH
        + "import json, sys\nfrom lstm_onnx.runtime.predictor import TextClassifier\n"
        + f"model = TextClassifier.load({str(tiny_bundle_dir)!r}, providers='cpu')\n"
        + "assert model.predict(['a great film'])[0].label in ('neg', 'pos')\n"
        + _REPORT
    )
    loaded = _python(code)
    assert loaded == {
        "torch": True,
        "spacy": False,
        "lstm_onnx.trainer": False,
        "lstm_onnx.exporter": False,
        "thinc": False,
    }


def _cli(args: list[str], block_torch: bool) -> dict[str, bool]:
    code = (
        (_BLOCK_TORCH if block_torch else "")
        + "import json, sys\nfrom lstm_onnx.cli import app\n"
        + f"try:\n    app({args!r}, prog_name='lstm-onnx')\n"
        + "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        + _REPORT
    )
    return _python(code)


def test_cli_help_predict_evaluate_info_never_import_torch_or_spacy(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "great", "label": "pos"}\n{"text": "awful", "label": "neg"}\n', encoding="utf-8")
    bundle = str(tiny_bundle_dir)
    for args in (["--help"], ["predict", bundle, "great film"], ["evaluate", bundle, str(data)], ["info", bundle]):
        loaded = _cli(args, block_torch=False)
        assert loaded["torch"] is False and loaded["spacy"] is False, (args, loaded)


def test_cli_predict_works_where_torch_cannot_be_imported(tiny_bundle_dir: Path) -> None:
    loaded = _cli(["predict", str(tiny_bundle_dir), "great film"], block_torch=True)
    assert loaded["spacy"] is False


def test_cli_train_without_torch_names_the_extra_to_install(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "great", "label": "pos"}\n{"text": "awful", "label": "neg"}\n', encoding="utf-8")
    code = (
        _BLOCK_TORCH
        + "from lstm_onnx.cli import app\n"
        + f"args = ['train', {str(data)!r}, '--out', {str(tmp_path / 'run')!r}, '--preset', 'tiny']\n"
        + "app(args, prog_name='lstm-onnx')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "needs 'torch'" in done.stderr and "lstm-onnx[train]" in done.stderr
    assert "Traceback" not in done.stderr
