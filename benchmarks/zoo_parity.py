"""Export every zoo model (tests/exporter/zoo.py) and measure parity on each backend; prints a Markdown table.

Run from the repository root: ``.venv/bin/python benchmarks/zoo_parity.py``. The reference evaluator (pure numpy)
gets a smaller grid than ONNX Runtime and OpenVINO (batch sizes 1-64, lengths 1-2,000).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lstm_onnx.exporter.backends import OnnxReferenceBackend, OpenVinoBackend, OrtBackend  # noqa: E402
from lstm_onnx.exporter.module_export import export_module  # noqa: E402
from lstm_onnx.exporter.module_verify import judge, verify  # noqa: E402
from tests.exporter.zoo import REFUSED, ZOO  # noqa: E402

FULL = ((1, 1), (1, 2000), (2, 9), (7, 33), (16, 64), (64, 17), (64, 300), (3, 1000))
SMALL = ((1, 1), (1, 200), (4, 33))


def main() -> None:
    print(
        "| model | ort-cpu max diff | onnx-reference (padded / unpadded rows) | openvino (padded / unpadded rows) "
        "| PyTorch model reads its padding |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, factory in ZOO.items():
            model, example = factory()
            info = export_module(model, example, Path(tmp) / f"{name}.onnx")
            cells = []
            for backend, grid in (
                (OrtBackend("ort-cpu", info.path), FULL),
                (OnnxReferenceBackend(info.path), SMALL),
                (OpenVinoBackend(info.path), FULL),
            ):
                report = judge(verify(model, info, example, backends=[backend], grid=grid))
                r = report.backends[0]
                if r.status == "unavailable":
                    cells.append("not installed")
                elif backend.name == "ort-cpu":
                    cells.append(f"{r.worst():.1e} ({r.status})")
                else:
                    padded = "n/a" if r.max_diff_padded_rows is None else f"{r.max_diff_padded_rows:.1e}"
                    cells.append(f"{padded} / {r.max_diff_unpadded_rows:.1e}")
            dep = report.model_batch_dependent
            cells.append("n/a" if dep is None else ("yes" if dep else "no"))
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        for name, (factory, _) in REFUSED.items():
            model, example = factory()
            try:
                export_module(model, example, Path(tmp) / f"{name}.onnx")
                print(f"| {name} | NOT REFUSED | | | |")
            except Exception as err:  # noqa: BLE001 - the refusal message is the result
                print(f"| {name} (refused) | `{str(err)[:110]}` | | | |")


if __name__ == "__main__":
    main()
