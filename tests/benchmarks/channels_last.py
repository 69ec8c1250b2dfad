"""Benchmark (not a test): one training step (forward + backward) per net, NCHW vs channels_last.

Run: python tests/benchmarks/channels_last.py   (prints ms per step on the device present)
"""

from __future__ import annotations

import time

import torch

from segcore.core.device import describe, pick_device
from segcore.models.registry import build_model

CASES = (  # (model, classes, width, input channels, H, W): the smoke pipeline's nets and inputs
    ("fcn32s", 21, 0.125, 3, 100, 110),
    ("fcn8s", 21, 0.125, 3, 100, 110),
    ("fcn-googlenet", 21, 0.125, 3, 100, 110),
)


def step_ms(model: torch.nn.Module, x: torch.Tensor, trials: int = 8) -> float:
    """Mean wall time of forward + backward after two warm-up steps."""
    def step():
        model(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
    step(), step()
    start = time.perf_counter()
    for _ in range(trials):
        step()
    return (time.perf_counter() - start) / trials * 1000


def main() -> None:
    device = pick_device()
    print(f"device: {describe(device)}")
    for name, classes, width, channels, h, w in CASES:
        torch.manual_seed(0)
        model = build_model(name, n_classes=classes, width=width, in_channels=channels).to(device)
        x = torch.randn(1, channels, h, w, device=device)
        nchw = step_ms(model, x)
        cl = step_ms(model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last))
        print(f"{name:14s} {h}x{w}: NCHW {nchw:6.1f} ms, channels_last {cl:6.1f} ms ({nchw / cl:.2f}x)")


if __name__ == "__main__":
    main()
