"""The machine a proof ran on: GPU, driver, versions, settings that change numbers, and which code ran."""

from __future__ import annotations

import filecmp
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["code_origin", "describe_machine", "strict_fp32"]

# Distributions whose versions go with every figure.
_DISTRIBUTIONS = ("lstm-onnx", "torch", "onnxruntime-gpu", "onnxruntime", "onnx", "onnxscript", "numpy", "safetensors")
# Environment variables that change what the numbers mean.
_SETTINGS = ("NVIDIA_TF32_OVERRIDE", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
_NVIDIA_SMI_FIELDS = "name,driver_version,memory.total,compute_cap,clocks.max.sm"


def strict_fp32(torch: Any) -> dict[str, Any]:
    """Turn TF32 off in this process's PyTorch (cuDNN, which runs the LSTM, allows it by default) and say what it
    was; fp32 parity with ONNX Runtime needs float32 maths on both sides."""
    before = {
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # PyTorch 2.9+ keeps these per operation too; the settings above set them ("none": not TF32). Recorded as read.
    rnn = getattr(getattr(torch.backends.cudnn, "rnn", None), "fp32_precision", None)
    return {**before, "cudnn_rnn_fp32_precision_now": rnn}


def _versions() -> dict[str, str]:
    found = {}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _nvidia_smi() -> dict[str, str] | str:
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={_NVIDIA_SMI_FIELDS}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"nvidia-smi not usable: {type(err).__name__}"
    first = done.stdout.strip().splitlines()[0]
    return dict(zip(_NVIDIA_SMI_FIELDS.split(","), (v.strip() for v in first.split(",")), strict=False))


def _gpu(torch: Any) -> dict[str, Any]:  # pragma: no cover - needs a CUDA device
    props = torch.cuda.get_device_properties(0)
    driver = Path("/proc/driver/nvidia/version")
    return {
        "name": torch.cuda.get_device_name(0),
        "capability": list(torch.cuda.get_device_capability(0)),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "nvidia_smi": _nvidia_smi(),
        "driver_proc": driver.read_text().splitlines()[0] if driver.is_file() else None,
        "dev_nvidiactl": Path("/dev/nvidiactl").exists(),
    }


def describe_machine(device: str) -> dict[str, Any]:
    """Python, platform, CPUs, versions, ONNX Runtime's providers, settings and (on CUDA) the GPU and driver.

    Args:
        device: ``"cuda"`` or ``"cpu"``.

    Returns:
        The facts; ``gpu`` is ``None`` on the CPU, or (with ``gpu_missing`` saying why) when PyTorch sees no GPU.
    """
    import onnxruntime as ort
    import torch

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": _versions(),
        "onnxruntime_providers": list(ort.get_available_providers()),
        "onnxruntime_device": ort.get_device(),
        "settings": {name: os.environ.get(name) for name in _SETTINGS},
        "torch_tf32_defaults": strict_fp32(torch),
        "gpu": None,
    }
    if device == "cuda" and not torch.cuda.is_available():
        facts["gpu_missing"] = f"torch {torch.__version__} sees no CUDA device"
    elif device == "cuda":  # pragma: no cover - needs a CUDA device
        facts["gpu"] = _gpu(torch)
    return facts


def _python_files(root: Path) -> set[str]:
    """``.py`` files under ``root``, relative to it; the checkout's subpackages are links, which are followed."""
    found = set()
    for folder, _, names in os.walk(root, followlinks=True):
        found |= {(Path(folder) / n).relative_to(root).as_posix() for n in names if n.endswith(".py")}
    return found


def code_origin(checkout: Path) -> dict[str, Any]:
    """Which lstm_onnx runs (installed or this checkout) and, if installed, whether it is the checkout's code.

    A wheel carried to the GPU machine is built from the checkout; if the code changed after it was built, the
    figures would be those of older code, so every differing file is named.

    Args:
        checkout: The repository root (holding ``lstm_onnx/``), or a folder without it (nothing to compare).
    """
    import lstm_onnx

    package = Path(lstm_onnx.__file__).resolve().parent
    source = checkout / "lstm_onnx"
    origin: dict[str, Any] = {"package": package.as_posix(), "version": lstm_onnx.__version__, "differs": []}
    if not (source / "__init__.py").is_file():
        origin["from"] = "installed (no checkout here to compare with)"
        return origin
    if package == source.resolve():
        origin["from"] = "checkout"
        return origin
    origin["from"] = "installed"
    ours, theirs = _python_files(source), _python_files(package)
    differs = sorted(ours ^ theirs)
    differs += sorted(n for n in ours & theirs if not filecmp.cmp(source / n, package / n, shallow=False))
    origin["differs"] = differs
    return origin
