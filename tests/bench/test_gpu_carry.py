"""scripts/gpu_carry.py: calls planned to fill each before the next, parts verified, files joined back exactly."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import shutil
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT


def load_gpu_carry() -> ModuleType:
    """The stdlib-only script as a module (it is run as a script on the GPU machine, never installed)."""
    spec = importlib.util.spec_from_file_location("gpu_carry", REPO_ROOT / "scripts" / "gpu_carry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_carry"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gpu_carry = load_gpu_carry()


def write_wheel(folder: Path, payload: bytes = b"VALUE = 42\n") -> Path:
    """A valid stand-in wheel with a RECORD of real hashes (what ``repack_stored`` checks)."""
    files = {
        "gpu_proof_dummy/__init__.py": payload,
        "gpu_proof_dummy-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gpu-proof-dummy\nVersion: 0.1\n",
        "gpu_proof_dummy-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip('=')},{len(data)}\n"
        for name, data in files.items()
    )
    files["gpu_proof_dummy-0.1.dist-info/RECORD"] = (record + "gpu_proof_dummy-0.1.dist-info/RECORD,,\n").encode()
    path = folder / "gpu_proof_dummy-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("sizes", "capacity", "calls"),
    [([10], 10, 1), ([25], 10, 3), ([4, 4, 4], 10, 2), ([0, 10, 3], 10, 2), ([30, 1], 10, 4)],
)
def test_gpu_carry_plan_fills_each_call_before_the_next(sizes: list[int], capacity: int, calls: int) -> None:
    parts = gpu_carry.plan(sizes, capacity)
    assert max(p.call for p in parts) == calls
    for index, size in enumerate(sizes):  # every byte of every file, once, in order
        mine = [p for p in parts if p.file == index]
        assert [p.offset for p in mine] == [sum(q.size for q in mine[:i]) for i in range(len(mine))]
        assert sum(p.size for p in mine) == size
    for call in range(1, calls + 1):
        assert sum(p.size for p in parts if p.call == call) <= capacity


def test_gpu_carry_plan_refuses_a_call_with_no_room() -> None:
    with pytest.raises(ValueError, match="no room left in a call"):
        gpu_carry.plan([1], 0)


def _tiny_carry(tmp_path: Path) -> Path:
    source = tmp_path / "notes.txt"
    source.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: three calls of 4,000
    files = [gpu_carry.CarryFile("data/notes.txt", source, False, gpu_carry.sha256_file(source), 10_240, {})]
    gpu_carry.write_calls(files, gpu_carry.plan([10_240], 4_000), tmp_path / "carry", 4_000)
    return tmp_path / "carry"


def test_gpu_carry_join_restores_the_file(tmp_path: Path) -> None:
    carry = _tiny_carry(tmp_path)
    lines, problems = gpu_carry.check(carry)
    assert problems == [] and "all 3 calls here" in lines
    (written,) = gpu_carry.join(carry, tmp_path / "joined")
    assert written.read_bytes() == (tmp_path / "notes.txt").read_bytes()


def test_gpu_carry_check_names_a_missing_call_once_the_manifest_is_here(tmp_path: Path) -> None:
    carry = _tiny_carry(tmp_path)
    shutil.rmtree(carry / "c2")
    lines, problems = gpu_carry.check(carry)
    assert problems == ["c2: not here (resend it)"] and "missing: c2" in lines
    with pytest.raises(ValueError, match="c2: not here"):
        gpu_carry.join(carry, tmp_path / "joined")


def test_gpu_carry_check_before_the_last_call_is_not_a_problem(tmp_path: Path) -> None:
    carry = _tiny_carry(tmp_path)
    shutil.rmtree(carry / "c3")  # the manifest travels with the last call
    lines, problems = gpu_carry.check(carry)
    assert problems == [] and "carry.json not here yet: it comes with the last call" in lines


def test_gpu_carry_check_catches_a_broken_part(tmp_path: Path) -> None:
    carry = _tiny_carry(tmp_path)
    part = next((carry / "c2").glob("*.part*"))
    part.write_bytes(b"x" + part.read_bytes()[1:])
    _, problems = gpu_carry.check(carry)
    assert problems == [f"c2/{part.name}: sha256 differs (a broken transfer; resend c2)"]


def test_gpu_carry_repack_refuses_a_member_that_breaks_its_record(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(tmp_path / "bad.whl", "w") as bad:
        for info in source.infolist():
            data = source.read(info)
            bad.writestr(info, b"VALUE = 41\n" if info.filename.endswith("__init__.py") else data)
    with pytest.raises(ValueError, match=r"gpu_proof_dummy/__init__.py has sha256=.*RECORD says sha256="):
        gpu_carry.repack_stored(tmp_path / "bad.whl", tmp_path / "out.whl")
    gpu_carry.repack_stored(wheel, tmp_path / "stored.whl")
    with zipfile.ZipFile(tmp_path / "stored.whl") as stored:
        assert {i.compress_type for i in stored.infolist()} == {zipfile.ZIP_STORED}
        assert stored.read("gpu_proof_dummy/__init__.py") == b"VALUE = 42\n"
