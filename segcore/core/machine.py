"""A stable description of the machine a stage computes on: the `device` stage's output.

Timings are only meaningful on the machine that measured them, so the timing stage depends on
this description: in a fresh clone on another machine it differs and timing reruns, while a second
`dvc repro` on the same machine finds it unchanged. Read without importing torch (this runs on
every `dvc repro`): CPU model and usable cores from the OS, GPUs from `nvidia-smi`, torch's
version from its package metadata.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    """Names of the NVIDIA GPUs this process may use ('nvidia-smi -L' lines); [] without a driver."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    names = [line.strip() for line in out.splitlines() if line.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # the devices torch will see, in its order
        keep = [int(i) for i in visible.split(",") if i.strip().isdigit()]
        names = [names[i] for i in keep if i < len(names)]
    return names


def describe_machine() -> dict:
    """CPU, usable cores, GPUs and torch version: what a timing depends on, and nothing that varies by run."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {"cpu": cpu_model(), "cores": cores, "gpus": gpus(), "torch": torch_version,
            "python": platform.python_version()}
