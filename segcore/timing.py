"""Forward-pass timing as the paper measured it (Sec. 4.1, Tables 1 and 3).

Full-size net, one 500x500 input, inference mode, warm-up first, the device synchronised around
every trial so asynchronous GPU kernels are inside the measured interval.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from segcore.device import environment


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_forward(model: nn.Module, size: int, trials: int, warmup: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    """Mean and standard deviation (ms) of ``trials`` forward passes on a (1, C, size, size) input."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    device = torch.device(device)
    model = model.to(device=device, dtype=dtype).eval()
    in_channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.randn(1, in_channels, size, size, device=device, dtype=dtype)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(trials):
        _sync(device)
        start = time.perf_counter()
        model(x)
        _sync(device)
        times.append(1000 * (time.perf_counter() - start))
    return {"mean_ms": statistics.fmean(times), "std_ms": statistics.pstdev(times), "trials": trials,
            "warmup": warmup, "size": size, "dtype": str(dtype).removeprefix("torch."), **environment(device)}


def time_variants(model: nn.Module, size: int, trials: int, warmup: int,
                  device: torch.device | str = "cpu") -> dict[str, dict]:
    """fp32 everywhere; on CUDA also channels_last with bf16 (or fp16 where bf16 is unsupported)."""
    device = torch.device(device)
    results = {"fp32": time_forward(model, size, trials, warmup, device)}
    if device.type == "cuda":
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        fast = model.to(memory_format=torch.channels_last)
        results[f"channels_last_{str(half).removeprefix('torch.')}"] = time_forward(
            fast, size, trials, warmup, device, dtype=half)
    return results
