"""FLOP counts of a forward pass, and the ceilings to compare an achieved FLOP/s against.

Why: images/s alone does not say whether a training run uses its accelerator well. Dividing the
work done (FLOPs) by the time gives an achieved FLOP/s, and that is reported as a fraction of two
ceilings when both are known:

- the nominal dense peak of the chip for the precision used (`peak_flops`, from the vendor's
  datasheet; sparsity figures are halved away), and
- the measured rate of a large square matmul in that precision (`measured_matmul_flops`), a
  practical ceiling that includes clocks, power limits and library efficiency.

Convention: one multiply-accumulate (MAC) is 2 FLOPs, and only the MACs of nn.Conv2d,
nn.ConvTranspose2d and nn.Linear are counted. Element-wise work (ReLU, pooling, dropout, bias,
the loss) is left out: it is memory-bound and small next to the convolutions of FCN-VGG16.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Iterator

import torch
from torch import nn

from segcore.core.device import synchronize

# Backward costs about twice the forward: one pass for the input gradients, one for the weight
# gradients, each as many MACs as the forward. We keep 3 x forward for every layer, although the
# first conv needs no input gradient and frozen layers (the fixed bilinear upscore) no weight
# gradient: for FCN-VGG16 both corrections are small, and a plain rule is easier to compare.
TRAINING_FLOPS_PER_FORWARD = 3

# Dense peak FLOP/s by precision, from NVIDIA's datasheets. Matched against
# torch.cuda.get_device_name in order, first hit wins (so "H100 PCIe" precedes the SXM entries).
# Unknown names (H100 NVL, consumer cards, CPUs) get None rather than a guess.
_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"fp32": 51.2e12, "tf32": 378e12, "bf16": 756e12, "fp16": 756e12}),
    ("H100 80GB HBM3", {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12, "fp16": 989.4e12}),
    ("H100 SXM", {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12, "fp16": 989.4e12}),
    ("H200", {"fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12, "fp16": 989.4e12}),  # H100 SXM compute
    ("A100", {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12}),
)
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_DTYPE_PRECISION = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def layer_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """FLOPs (2 x MACs) of one call of a conv, transposed conv or linear layer; 0 for others.

    Conv2d counts per OUTPUT pixel, ConvTranspose2d per INPUT pixel (each input pixel is spread
    over a k x k window of the output), Linear per row of its input. Groups divide the work.
    """
    if isinstance(module, nn.ConvTranspose2d):
        n, c_in, h, w = x.shape  # (N, C_in, H_in, W_in)
        per_pixel = c_in * (module.out_channels // module.groups) * math.prod(module.kernel_size)
        return 2 * n * h * w * per_pixel
    if isinstance(module, nn.Conv2d):
        n, c_out, h, w = out.shape  # (N, C_out, H_out, W_out)
        per_pixel = c_out * (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return 2 * n * h * w * per_pixel
    if isinstance(module, nn.Linear):
        rows = x.numel() // module.in_features  # any leading dims, (..., in_features)
        return 2 * rows * module.in_features * module.out_features
    return 0


@contextlib.contextmanager
def counting(model: nn.Module) -> Iterator[dict[str, int]]:
    """Within the block, every forward of `model` adds its layers' FLOPs to the yielded dict.

    Keys are module names from `model.named_modules()`; a layer called twice counts twice.
    """
    tally: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            tally[name] = tally.get(name, 0) + layer_flops(module, inputs[0], out)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        yield tally
    finally:
        for h in handles:
            h.remove()


def forward_flops_by_layer(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """FLOPs of each counted layer in one forward pass on a zero input of `input_shape`.

    The input goes on the model's device: a model built under ``torch.device("meta")`` is
    counted from shapes alone, without memory or compute, which is how full-size nets are
    counted quickly. The model's train/eval mode is left as it was (it changes no count).
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(input_shape, device=device)
    with torch.no_grad(), counting(model) as tally:
        model(x)
    return tally


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Total FLOPs (2 x MACs) of one forward pass; e.g. input_shape (1, 3, 500, 500)."""
    return sum(forward_flops_by_layer(model, input_shape).values())


def training_flops(forward: int) -> int:
    """FLOPs of forward + backward: 3 x forward (see TRAINING_FLOPS_PER_FORWARD for the why)."""
    return TRAINING_FLOPS_PER_FORWARD * forward


def precision_name(dtype: torch.dtype | str) -> str:
    """'fp32' / 'tf32' / 'bf16' / 'fp16' from a torch dtype or one of those names."""
    name = _DTYPE_PRECISION.get(dtype, dtype) if isinstance(dtype, torch.dtype) else dtype
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {dtype!r}; allowed: {', '.join(PRECISIONS)} "
                         f"or torch.float32 / bfloat16 / float16")
    return name


def peak_flops(device: torch.device | str, dtype: torch.dtype | str) -> float | None:
    """Nominal dense peak FLOP/s of a known GPU in `dtype` ('tf32' for fp32 on tensor cores).

    None for CPUs and GPUs not in the table: a wrong peak is worse than none.
    """
    device, precision = torch.device(device), precision_name(dtype)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in _PEAKS:
        if key in name:
            return peaks[precision]
    return None


def measured_matmul_flops(device: torch.device | str, dtype: torch.dtype | str, n: int | None = None,
                          repeats: int = 5) -> float:
    """Best achieved FLOP/s of an (n, n) @ (n, n) matmul in `dtype`, over `repeats` timed runs.

    A practical ceiling for the same precision on the same device. Default n: 8192 on CUDA
    (about 1 TFLOP, long enough to reach full clocks), 2048 on CPU (well under a second per run
    on 2 cores). 'tf32' is fp32 inputs with TF32 matmuls allowed for the measurement only.
    """
    device, precision = torch.device(device), precision_name(dtype)
    if precision == "tf32" and device.type != "cuda":
        raise ValueError(f"tf32 needs a CUDA device, got {device}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    n = n or (8192 if device.type == "cuda" else 2048)
    torch_dtype = {"fp32": torch.float32, "tf32": torch.float32,
                   "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a = torch.randn(n, n, device=device, dtype=torch_dtype)
    b = torch.randn(n, n, device=device, dtype=torch_dtype)
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"  # measure exactly what was asked
    try:
        a @ b  # warm-up: kernel selection, clocks
        best = math.inf
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            a @ b
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    return 2 * n**3 / best
