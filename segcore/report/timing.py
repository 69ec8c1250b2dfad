"""Forward-pass timing as the paper measured it (Sec. 4.1, Tables 1 and 3).

Full-size net, one 500x500 input, inference mode, warm-up first, the device synchronised around
every trial so asynchronous GPU kernels are inside the measured interval.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import torch
from torch import nn

from segcore.core.device import environment, synchronize
from segcore.models.registry import input_channels


@torch.inference_mode()
def time_forward(model: nn.Module, size: int, trials: int, warmup: int,
                 device: torch.device | str = "cpu", autocast: torch.dtype | None = None,
                 channels_last: bool = False) -> dict:
    """Mean and standard deviation (ms) of ``trials`` forward passes on a (1, C, size, size) input.

    The weights stay fp32; ``autocast`` runs the pass in mixed precision (bf16 or fp16) and
    ``channels_last`` stores input and weights NHWC, as tensor-core kernels prefer.
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    device = torch.device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format).eval()
    x = torch.randn(1, input_channels(model), size, size, device=device).to(memory_format=memory_format)
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(trials):
            synchronize(device)
            start = time.perf_counter()
            model(x)
            synchronize(device)
            times.append(1000 * (time.perf_counter() - start))
    dtype = f"{autocast} autocast".removeprefix("torch.") if autocast is not None else "float32"
    return {"mean_ms": statistics.fmean(times), "std_ms": statistics.pstdev(times), "trials": trials,
            "warmup": warmup, "size": size, "dtype": dtype, "channels_last": channels_last,
            **environment(device)}


def time_variants(model: nn.Module, size: int, trials: int, warmup: int,
                  device: torch.device | str = "cpu") -> dict[str, dict]:
    """fp32 everywhere; on CUDA also channels_last in fp32 and in mixed precision (bf16, else fp16).

    Keys: ``fp32``, ``channels_last_fp32``, ``channels_last_bf16`` (or ``..._fp16``).
    """
    device = torch.device(device)
    results = {"fp32": time_forward(model, size, trials, warmup, device)}
    if device.type == "cuda":
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        short = {torch.bfloat16: "bf16", torch.float16: "fp16"}[half]
        results["channels_last_fp32"] = time_forward(model, size, trials, warmup, device, channels_last=True)
        results[f"channels_last_{short}"] = time_forward(model, size, trials, warmup, device, autocast=half,
                                                        channels_last=True)
    return results


def time_models(build: Callable[[str], nn.Module], names: Sequence[str], size: int, trials: int,
                warmup: int, device: torch.device | str = "cpu") -> dict[str, dict]:
    """``time_variants`` of each ``build(name)``: ``{name: fp32 figures, name_<variant>: ...}``.

    Each net is built just before it is timed and dropped after, so only one full-size net is
    in memory at a time.
    """
    result: dict[str, dict] = {}
    for name in names:
        variants = time_variants(build(name), size, trials, warmup, device)
        result[name] = variants.pop("fp32")
        result.update({f"{name}_{k}": v for k, v in variants.items()})
    return result
