"""Benchmark (not a test): each form of the fixed bilinear upsampling, on the shapes FCN meets at 500 px.

Run: python tests/benchmarks/upsampling.py [--trials N]   (prints ms on the device present)

The shapes are read off full-width FCN-32s / FCN-8s on the meta device (no weights, no arithmetic),
so they follow the nets if their layers change. For each upsampling layer and form: the forward
(no autograd) and forward + backward w.r.t. the input (as in training), on NCHW and on channels_last
(NHWC) input.
`FixedBilinearUpsampling`'s CPU rule (by memory format) comes from this table; the last line of each
block says what it picks.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from segcore.core.device import describe, pick_device, synchronize
from segcore.models.fcn import FCN
from segcore.models.upsampling import FORMS, FixedBilinearUpsampling, time_forms

CLASSES, SIZE = 21, 500  # PASCAL VOC, the paper's timing input


def layer_shapes(variant: str) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(layer name, k, stride, input shape) of each fixed upsampling of an FCN on a SIZE input."""
    shapes = []
    with torch.device("meta"):
        model = FCN(CLASSES, variant)
        for name, m in model.named_modules():
            if isinstance(m, FixedBilinearUpsampling):
                m.register_forward_hook(lambda m, inp, _o, name=name: shapes.append(
                    (name, m.kernel_size[0], m.stride[0], tuple(inp[0].shape))))
        model(torch.empty(1, 3, SIZE, SIZE))
    return shapes


def train_ms(layer: FixedBilinearUpsampling, form: str, x: torch.Tensor, trials: int) -> float:
    """Best-of-`trials` ms of forward + backward w.r.t. the input."""
    x = x.detach().requires_grad_(True)
    best = math.inf
    for i in range(trials + 1):  # the first call warms up
        synchronize(x.device)
        start = time.perf_counter()
        layer.compute(form, x).sum().backward()
        synchronize(x.device)
        if i:
            best = min(best, time.perf_counter() - start)
    return 1000 * best


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--trials", type=int, default=10)
    trials = args.parse_args(argv).trials
    device = pick_device()
    print(f"device: {describe(device)}, torch {torch.__version__}, fp32, best of {trials}")
    print(f"{'net':4s} {'layer':14s} {'k/s':6s} {'input':9s} {'form':10s} "
          f"{'fwd NCHW':>9s} {'fwd NHWC':>9s} {'f+b NCHW':>9s} {'f+b NHWC':>9s}")
    for variant in ("32s", "8s"):
        for name, k, s, shape in layer_shapes(variant):
            torch.manual_seed(0)
            layer = FixedBilinearUpsampling(CLASSES, k, s).to(device)
            x = torch.randn(shape, device=device)
            xl = x.to(memory_format=torch.channels_last)
            fwd, fwd_l = time_forms(layer, x, FORMS, trials), time_forms(layer, xl, FORMS, trials)
            size = f"{shape[-2]}x{shape[-1]}"
            for form in FORMS:
                print(f"{variant:4s} {name:14s} {k}/{s:<4d} {size:9s} {form:10s} {fwd[form]:9.2f} "
                      f"{fwd_l[form]:9.2f} {train_ms(layer, form, x, trials):9.2f} "
                      f"{train_ms(layer, form, xl, trials):9.2f}")
            print(f"{'':4s} {name:14s} automatic: NCHW {layer.form_for(x)}, NHWC {layer.form_for(xl)}")


if __name__ == "__main__":
    main()
