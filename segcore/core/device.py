"""Name the device a number was measured on, with what decides its rounding: GPU model, compute
capability and library versions, or CPU identity, ISA level, numerics mode and thread count."""

from __future__ import annotations

import platform

import torch

from segcore.core import numerics
from segcore.core.machine import cpu_identity, cpu_isa, cpu_line, gpu_driver


def pick_device(requested: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; anything else is passed to torch.device."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def place(t: torch.nn.Module | torch.Tensor, device: torch.device | str, channels_last: bool = True):
    """Move a net or a (N, C, H, W) batch to ``device``, in channels_last memory format by default.

    Why: oneDNN's convolutions run fastest on NHWC. On this 2-core CPU a training step of the
    1/8-width FCN-VGG16 takes 30 ms instead of 39, and of the 1/16-width U-Net 20 instead of 33
    (tests/benchmarks/channels_last.py); the result is still deterministic on the CPU. Training
    can switch it off (params ``runtime.channels_last``): cuDNN's grouped transposed convolution,
    the fixed bilinear upsampling, was slower in NHWC on an H200.
    """
    if not channels_last or (isinstance(t, torch.Tensor) and t.dim() != 4):
        return t.to(device, non_blocking=True)  # overlaps the copy from pinned loader memory on CUDA
    return t.to(device, memory_format=torch.channels_last, non_blocking=True)


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously); a no-op on the CPU. Timers need it."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device: torch.device | str) -> str:
    """One line naming what changes the numbers, such as
    'NVIDIA H200 (sm_90, CUDA 13.0, cuDNN 92400, driver 570.86), deterministic algorithms' or
    'CPU: AMD EPYC (AuthenticAMD family 25 model 17 stepping 1, avx512_bf16), portable numerics (avx2, 2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        driver = gpu_driver()
        det = "deterministic" if torch.are_deterministic_algorithms_enabled() else "nondeterministic"
        return (f"{torch.cuda.get_device_name(device)} (sm_{major}{minor}, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}{f', driver {driver}' if driver else ''}), {det} algorithms")
    return f"CPU: {cpu_line()}, {numerics.summary()}"


def environment(device: torch.device | str) -> dict[str, object]:
    """Device line, the numerics in force and the software versions that produced a number."""
    return {"device": describe(device), "torch": str(torch.__version__), "python": platform.python_version(),
            "numerics": numerics.in_force(), "cpu": {**cpu_identity(), "isa": cpu_isa()}}
