"""A stable description of the machine a stage computes on: the `device` stage's output.

Timings are only meaningful on the machine that measured them, and on the CPU the vector ISA decides
the rounding of every sum, so the timing stage depends on this description: in a fresh clone on
another machine it differs and timing reruns, while a second `dvc repro` on the same machine finds it
unchanged. Read without importing torch (this runs on every `dvc repro`): CPU identity and usable
cores from the OS, GPUs from `nvidia-smi`, torch's version from its package metadata.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

# Vector ISA levels, best first, each with the /proc/cpuinfo flags it needs. These are the levels
# torch's own kernels (ATEN_CPU_CAPABILITY) and oneDNN (ONEDNN_MAX_CPU_ISA) dispatch on.
ISA_LEVELS = (
    ("amx", ("amx_tile", "amx_bf16", "avx512_bf16")),
    ("avx512_bf16", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16")),
    ("avx512", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("avx2", ("avx2", "fma")),
    ("avx", ("avx",)),
    ("sse4_2", ("sse4_2",)),
)


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as {key: value}; {} where there is none (macOS)."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return {}
    block: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            if block:
                break
            continue
        key, _, value = line.partition(":")
        block[key.strip()] = value.strip()
    return block


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform.processor()."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_identity() -> dict[str, str]:
    """Vendor, family, model and stepping: a virtual machine may name its CPU only 'AMD EPYC', and
    two such CPUs of different generations round differently. Empty values where the OS does not say."""
    info = _cpuinfo()
    return {"vendor": info.get("vendor_id", ""), "family": info.get("cpu family", ""),
            "model": info.get("model", ""), "stepping": info.get("stepping", "")}


def cpu_isa(flags: set[str] | None = None) -> str:
    """The best vector ISA level of this CPU ('avx512_bf16', 'avx2', ...), from its flags; the machine
    name (e.g. 'arm64') where the OS lists none."""
    if flags is None:
        flags = set(_cpuinfo().get("flags", "").split())
    for level, needs in ISA_LEVELS:
        if flags.issuperset(needs):
            return level
    return platform.machine() if not flags else "baseline"


def cpu_line() -> str:
    """'AMD EPYC (AuthenticAMD family 25 model 17 stepping 1, avx512_bf16)': what identifies the CPU."""
    ident = cpu_identity()
    where = (f"{ident['vendor']} family {ident['family']} model {ident['model']} stepping {ident['stepping']}, "
             if ident["vendor"] else "")
    return f"{cpu_model()} ({where}{cpu_isa()})"


def _nvidia_smi(fields: str) -> list[list[str]]:
    """Rows of `nvidia-smi --query-gpu=<fields>` for the GPUs this process may use; [] without a driver."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # the devices torch will see, in its order
        keep = [int(i) for i in visible.split(",") if i.strip().isdigit()]
        rows = [rows[i] for i in keep if i < len(rows)]
    return rows


def gpus() -> list[str]:
    """'NVIDIA H200 (sm_90, driver 570.86)' for each NVIDIA GPU this process may use; [] without a driver."""
    named = []
    for row in _nvidia_smi("name,compute_cap,driver_version"):
        name, cap, driver = (row + ["", ""])[:3]
        named.append(f"{name} (sm_{cap.replace('.', '')}, driver {driver})" if cap else name)
    return named


def gpu_driver() -> str:
    """The NVIDIA driver version ('570.86'), or '' without one."""
    rows = _nvidia_smi("driver_version")
    return rows[0][0] if rows else ""


def describe_machine() -> dict:
    """CPU identity and ISA level, usable cores, GPUs and torch version: what a timing and the rounding
    depend on, and nothing that varies by run."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return {"cpu": cpu_model(), **{f"cpu_{k}": v for k, v in cpu_identity().items()}, "isa": cpu_isa(),
            "cores": cores, "gpus": gpus(), "torch": torch_version, "python": platform.python_version()}
