"""The import contract: runtime <- trainer <- exporter <- bench <- cli, checked over every import statement of the
package (those inside functions too, which ruff's banned-api rule and an import-time check would both miss)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What each layer may import of the project, and which third-party modules it must never import, even lazily.
LAYERS = {
    "runtime": {"allowed": {"runtime"}, "forbidden_external": {"torch", "onnx", "onnxscript", "safetensors"}},
    "trainer": {"allowed": {"runtime", "trainer"}, "forbidden_external": set()},
    "exporter": {"allowed": {"runtime", "trainer", "exporter"}, "forbidden_external": set()},
    "bench": {"allowed": {"runtime", "trainer", "exporter", "bench"}, "forbidden_external": set()},
}
_LAYER_OF_MODULE = {
    "lstm_onnx.runtime": "runtime",
    "lstm_onnx.trainer": "trainer",
    "lstm_onnx.exporter": "exporter",
    "lstm_onnx.bench": "bench",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "lstm_onnx":  # `from lstm_onnx import runtime` names a subpackage
                found += [(node.lineno, f"lstm_onnx.{alias.name}") for alias in node.names]
    return found


def _violations(layer: str) -> list[str]:
    rules = LAYERS[layer]
    bad = []
    for path in sorted((REPO / layer).rglob("*.py")):
        for line, module in _imports(path):
            where = f"{path.relative_to(REPO)}:{line} imports {module}"
            top = module.split(".")[0]
            if module.startswith("lstm_onnx.cli") or module == "lstm_onnx.__main__":
                bad.append(where + " (only the CLI may import the CLI)")
            elif top in ("runtime", "trainer", "exporter", "bench", "cli"):
                bad.append(where + " (use the lstm_onnx.* name)")
            elif top == "lstm_onnx":
                target = next((v for k, v in _LAYER_OF_MODULE.items() if module.startswith(k)), None)
                if target is not None and target not in rules["allowed"]:
                    bad.append(where + f" ({layer} may import only {sorted(rules['allowed'])})")
            elif top in rules["forbidden_external"]:
                bad.append(where + f" ({layer} never imports {top})")
    return bad


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_only_downwards(layer: str) -> None:
    assert _violations(layer) == []


def test_layers_checker_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "runtime"
    fake.mkdir()
    (fake / "leak.py").write_text("def f():\n    import torch\n    from lstm_onnx.trainer import train\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["REPO"]), "REPO", tmp_path)
    found = _violations("runtime")
    assert any("imports torch" in v for v in found) and any("lstm_onnx.trainer" in v for v in found)
