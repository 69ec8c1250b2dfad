"""Portable CPU numerics: pin what decides a computation's rounding (params ``runtime.numerics``).

Why: floating-point sums round differently when they are grouped differently, and on the CPU the
grouping is chosen by the machine. Measured with a 30-step Adam run of the smoke FCN-8s (issue 22):
two runs on one machine are bitwise equal, but torch's own kernel level (``ATEN_CPU_CAPABILITY``),
oneDNN's maximum ISA (``ONEDNN_MAX_CPU_ISA``) and the thread count each change the weights, so a
machine with AVX-512 and one with AVX2 only trained different nets from the same commit.

``portable`` pins those at one level every x86-64 machine of the last decade has (AVX2), with a fixed
thread count, plus the BLAS libraries' own switches (MKL's conditional numerical reproducibility,
OpenBLAS's core type) that decide their kernels the same way. ``native`` pins nothing: each library
takes the widest vectors and all cores (faster, numbers tied to the machine). On CUDA,
``deterministic`` turns on torch's deterministic algorithms: run-to-run equality on one GPU model,
nothing claimed across models.

Most of these switches are read by the libraries once, at load time (OpenMP's and OpenBLAS's when
numpy or torch is imported), so a process must start with them: :func:`enforce` restarts the stage
process with the pins in its environment when they are missing, before it computes anything;
torchrun's children inherit them.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from typing import Mapping

from segcore.core.errors import UserError
from segcore.core.machine import cpu_isa, cpu_line

PORTABLE_ISA = "avx2"
MODES = ("portable", "native")
# The ISA levels at or above the pinned one (segcore.core.machine.ISA_LEVELS names them).
_AT_LEAST_AVX2 = ("amx", "avx512_bf16", "avx512", "avx2")


class NumericsError(UserError, RuntimeError):
    """The numerics asked for cannot be had on this machine."""


@dataclass(frozen=True)
class Numerics:
    """What a stage process pins: ``mode`` portable or native, ``threads`` in portable mode, and
    torch's deterministic algorithms (``deterministic``, which matters on CUDA)."""

    mode: str = "native"
    threads: int = 2
    deterministic: bool = False

    @classmethod
    def from_view(cls, view: Mapping) -> "Numerics":
        return cls(mode=view["mode"], threads=int(view["threads"]), deterministic=bool(view["deterministic"]))

    def pins(self) -> dict[str, str]:
        """The environment variables a process must start with; {} in native mode without determinism."""
        env: dict[str, str] = {}
        if self.mode == "portable":
            threads = str(self.threads)
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
            if x86():
                env.update(ATEN_CPU_CAPABILITY=PORTABLE_ISA,           # torch's own vectorised kernels
                           ONEDNN_MAX_CPU_ISA=PORTABLE_ISA.upper(),    # convolutions (oneDNN)
                           MKL_CBWR=PORTABLE_ISA.upper(),              # matrix products (MKL)
                           OPENBLAS_CORETYPE="Haswell")                # numpy / scipy (OpenBLAS), the AVX2 core
        if self.deterministic:
            env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # cuBLAS is deterministic only with a fixed workspace
        return env

    def check_machine(self) -> None:
        """Refuse portable mode where the CPU cannot run the pinned level (x86 without AVX2)."""
        if self.mode == "portable" and x86() and cpu_isa() not in _AT_LEAST_AVX2:
            raise NumericsError(f"runtime.numerics = portable pins {PORTABLE_ISA}, which this CPU ({cpu_line()}) "
                                f"lacks; use native")


def x86() -> bool:
    """True on x86-64, where the ISA pins apply (elsewhere portable mode pins the thread count only)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def missing(numerics: Numerics, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pins that ``env`` (os.environ by default) does not hold yet, with the values they need."""
    env = os.environ if env is None else env
    return {k: v for k, v in numerics.pins().items() if env.get(k) != v}


def enforce(numerics: Numerics) -> None:
    """Put ``numerics`` in force in this stage process before it computes anything.

    A process whose environment lacks a pin after numpy or torch has loaded (their libraries read
    it at load time) replaces itself with the same command line and the pins added: os.execv keeps
    the pid, so DVC and torchrun see one process. Only a stage's entry point calls this; a test
    calling a stage's main in-process computes under its own numerics, and records say which
    (:func:`in_force`).
    """
    numerics.check_machine()
    todo = missing(numerics)
    if todo:
        os.environ.update(todo)
        if "torch" in sys.modules or "numpy" in sys.modules:
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    import torch

    if numerics.mode == "portable":
        torch.set_num_threads(numerics.threads)  # OMP_NUM_THREADS already says so; this makes it explicit
    if numerics.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def in_force() -> dict[str, object]:
    """What decides the rounding in this process now: mode, torch's kernel level, oneDNN's ISA cap,
    threads, deterministic algorithms. ``mode`` is portable only when every portable pin holds."""
    import torch

    threads = torch.get_num_threads()
    aten = torch.backends.cpu.get_cpu_capability().lower()
    pinned = not missing(Numerics("portable", threads)) and (not x86() or aten == PORTABLE_ISA)
    return {"mode": "portable" if pinned else "native", "aten": aten,
            "onednn": os.environ.get("ONEDNN_MAX_CPU_ISA", "native").lower(), "threads": threads,
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def summary(state: Mapping[str, object] | None = None) -> str:
    """'portable numerics (avx2, 2 threads)' or 'native numerics (avx512 kernels, oneDNN native, 2 threads)'."""
    s = dict(in_force() if state is None else state)
    threads = f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}"
    det = ", deterministic algorithms" if s["deterministic"] else ""
    if s["mode"] == "portable":
        return f"portable numerics ({s['aten']}, {threads}{det})"
    return f"native numerics ({s['aten']} kernels, oneDNN {s['onednn']}, {threads}{det})"
