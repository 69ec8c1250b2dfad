"""Fixed bilinear upsampling (FCN's frozen upscore layers), computed the fastest exact way per device.

A fixed upscore is a transposed conv (kernel k, stride s, no padding, no bias) whose per-class
k x k filter is the outer product u u^T of a 1-D bilinear ramp u. Four computations give the same
output (N, C, (H - 1) s + k, (W - 1) s + k), so callers crop it exactly as before:

  grouped    `F.conv_transpose2d` with groups=C on the stored weight (C, 1, k, k): today's layer.
  dense      one (C, C, k, k) kernel, zero off the diagonal: the reference's own Caffe layer.
  separable  two 1-D transposed convs, rows then columns, on the (N*C, 1, H, W) view.
  matmul     out = A_H @ x @ A_W^T, where A_n ((n - 1) s + k, n) holds u in column i at rows
             i*s .. i*s + k - 1: a 1-D transposed conv as one matrix product per axis.

They differ only in float summation order (exact in float64 for the kernels FCN uses, whose taps
are dyadic). The layer keeps its one parameter, `weight` (C, 1, k, k), frozen, so state dicts,
model files and checkpoints are unchanged; the other forms' tensors are derived caches, never
saved. Imports nothing from segcore.
"""

from __future__ import annotations

import math
import time
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

FORMS = ("grouped", "dense", "separable", "matmul")
CACHE_LIMIT = 64  # derived tensors kept per layer; input sizes vary, so the matrices are many


def bilinear_ramp(k: int) -> torch.Tensor:
    """1-D bilinear taps (k,) in float64, the reference's formula; a 2-D filter is their outer product."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    return 1 - (torch.arange(k, dtype=torch.float64) - c).abs() / f


def interpolation_matrix(taps: torch.Tensor, n: int, stride: int) -> torch.Tensor:
    """((n - 1) * stride + k, n) matrix A with A[i * stride + j, i] = taps[j], so that A @ x is the
    1-D transposed conv of x (n,) with `taps`: input i spreads its value over outputs i*s .. i*s+k-1."""
    k = taps.numel()
    rows = torch.arange(k, device=taps.device)[:, None] + stride * torch.arange(n, device=taps.device)
    a = taps.new_zeros((n - 1) * stride + k, n)
    return a.scatter_(0, rows, taps[:, None].expand(k, n))  # (H_out, n)


class FixedBilinearUpsampling(nn.ConvTranspose2d):
    """Frozen per-class bilinear transposed conv; `forward` picks a form per device (see FORMS).

    Which form (`set_form` overrides; the choice is kept per device and memory format):

    - CPU, a fixed rule, so that two CPU runs compute alike bit for bit: matmul on NCHW input,
      grouped on channels_last input. Why (tests/benchmarks/upsampling.py prints the numbers):
      oneDNN's grouped transposed conv is slow on NCHW, where two GEMMs beat it on every FCN
      shape, but fast on NHWC, where matmul's extra work (its matrices are banded, mostly zeros:
      about W/4 times the conv's multiply-adds) loses on the larger maps of FCN-8s.
    - CUDA: the fastest usable form, timed once on the first input (`time_forms`, no autograd, a
      few calls each). Why timing, not a rule: cuDNN's speed on grouped and transposed convs varies
      with GPU, library version, memory layout and dtype (the grouped 32x one was measured slower
      than a whole VGG16 trunk at 500 x 500, and slower still in channels_last); timing costs a
      fraction of a second once. Where timing is impossible or unwanted, namely CUDA-graph capture,
      torch.compile tracing, or torch.use_deterministic_algorithms (two runs must compute alike),
      the rule is matmul: GEMM is the best-tuned GPU primitive, and even FCN-8s's upscore8 at
      500 px is only about a GFLOP of it.
    - Any other device (meta included): grouped, today's path.

    Only grouped uses the weight as stored. dense copies it (so it is skipped while the weight
    needs a gradient); separable and matmul rebuild it from the 1-D ramp, so they are skipped unless
    the weight still equals u u^T exactly (it was not edited or loaded with other values).
    """

    def __init__(self, n_classes: int, k: int, stride: int) -> None:
        if n_classes < 1 or k < 1 or stride < 1:
            raise ValueError(f"n_classes, k and stride must be >= 1, got {n_classes}, {k}, {stride}")
        super().__init__(n_classes, n_classes, k, stride=stride, bias=False, groups=n_classes)
        self._reset_derived()
        with torch.no_grad():
            self.weight.copy_(self._filter(self.weight.dtype, self.weight.device))
        self.weight.requires_grad_(False)  # reference: lr 0
        self.forced: str | None = None
        self._chosen: dict[tuple, str] = {}  # (device, NCHW-contiguous?, usable forms) -> form

    # --- choosing ------------------------------------------------------------------------------

    def set_form(self, form: str | None) -> None:
        """Always compute with `form` (one of FORMS); None: choose per device again."""
        if form is not None and form not in FORMS:
            raise ValueError(f"unknown upsampling form {form!r}; allowed: {', '.join(FORMS)} or None")
        self.forced = form
        self._chosen.clear()

    def usable(self, form: str) -> bool:
        """Whether `form` computes exactly what the stored weight computes (see the class docstring)."""
        if form == "grouped":
            return True
        if self.weight.requires_grad or self.weight.device.type == "meta":
            return False
        bilinear = self._is_bilinear()  # also drops caches derived from an older weight
        return form == "dense" or bilinear

    def form_for(self, x: torch.Tensor) -> str:
        """The form `forward` uses for input `x`, choosing (and perhaps timing) on first use."""
        if self.forced is not None:
            if not self.usable(self.forced):
                raise ValueError(f"upsampling form {self.forced!r} is not exact for this layer: its weight "
                                 "needs a gradient or is no longer the bilinear filter")
            return self.forced
        usable = tuple(f for f in FORMS if self.usable(f))
        key = (x.device, x.is_contiguous(), usable)
        if key not in self._chosen:
            self._chosen[key] = self._choose(x, usable)
        return self._chosen[key]

    def _choose(self, x: torch.Tensor, usable: tuple[str, ...]) -> str:
        if "matmul" not in usable or x.device.type not in ("cpu", "cuda"):
            return "grouped"
        if x.device.type == "cpu":
            return "matmul" if x.is_contiguous() else "grouped"
        if not _can_time():
            return "matmul"
        times = time_forms(self, x, usable)
        return min(times, key=times.__getitem__)

    # --- computing -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, (H - 1) s + k, (W - 1) s + k), as the grouped transposed conv."""
        if output_size is not None:  # an output_padding request: only the conv itself handles it
            return super().forward(x, output_size)
        return self.compute(self.form_for(x), x)

    def compute(self, form: str, x: torch.Tensor) -> torch.Tensor:
        """The upsampling of `x` by one named form (no check that it is usable: see `form_for`)."""
        if form == "grouped":
            return super().forward(x)
        s = self.stride[0]
        if form == "dense":
            return F.conv_transpose2d(x, self._derived("dense", 0), stride=s)
        if form == "separable":
            n, c, h, w = x.shape
            k = self.kernel_size[0]
            taps = self._derived("taps", 0)
            y = x.reshape(n * c, 1, h, w)
            y = F.conv_transpose2d(y, taps.view(1, 1, k, 1), stride=(s, 1))  # rows: (N*C, 1, H_out, W)
            y = F.conv_transpose2d(y, taps.view(1, 1, 1, k), stride=(1, s))  # columns
            return y.view(n, c, *y.shape[-2:])
        if form == "matmul":
            a_h, a_w = self._derived("matrix", x.shape[-2]), self._derived("matrix", x.shape[-1])
            # W first: (N, C, H, W) @ (W, W_out) folds into one GEMM; then (H_out, H) @ (N, C, H, W_out).
            return a_h @ (x @ a_w.T)
        raise ValueError(f"unknown upsampling form {form!r}; allowed: {', '.join(FORMS)}")

    # --- derived tensors -----------------------------------------------------------------------

    def _filter(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The stored weight's value: u u^T rounded once to `dtype`, one copy per class (C, 1, k, k)."""
        u = bilinear_ramp(self.kernel_size[0]).to(device)
        k = u.numel()
        return (u[:, None] * u[None, :]).to(dtype).expand(self.out_channels, 1, k, k)

    def _is_bilinear(self) -> bool:
        """weight == u u^T exactly; checked once per weight object and version (a sync on CUDA)."""
        w = self.weight
        if self._checked is None or self._checked[0] is not w or self._checked[1] != w._version:
            self._reset_derived()
            with torch.no_grad():
                same = torch.equal(w, self._filter(w.dtype, w.device))
            self._checked = (w, w._version, same)  # holding `w` keeps its id from being reused
        return self._checked[2]

    def _derived(self, what: str, size: int) -> torch.Tensor:
        """Cached dense kernel, 1-D taps or interpolation matrix for `size` inputs, in the weight's
        dtype and device (so autocast and dtype errors behave as with the stored weight)."""
        w = self.weight
        key = (what, size, w.device, w.dtype)
        if key not in self._cache:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            # Normal tensors even under inference_mode: a later training step saves them for backward.
            with torch.inference_mode(False), torch.no_grad():
                if what == "dense":
                    c = self.out_channels
                    t = w.new_zeros(c, c, *w.shape[-2:])
                    t[range(c), range(c)] = w[:, 0]  # (C, C, k, k), zero off the diagonal
                else:
                    t = bilinear_ramp(self.kernel_size[0]).to(device=w.device, dtype=w.dtype)
                    if what == "matrix":
                        t = interpolation_matrix(t, size, self.stride[0])
            self._cache[key] = t
        return self._cache[key]

    def _reset_derived(self) -> None:
        self._cache: dict[tuple, torch.Tensor] = {}
        self._checked: tuple | None = None

    def _apply(self, fn, recurse=True):  # .to / .cuda / .double: the weight's values may change
        self._reset_derived()
        return super()._apply(fn, recurse)


def _can_time() -> bool:
    """False where timing is unwanted (determinism) or impossible (compile tracing, graph capture)."""
    if torch.are_deterministic_algorithms_enabled() or torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def time_forms(layer: FixedBilinearUpsampling, x: torch.Tensor, forms: Iterable[str] = FORMS,
               trials: int = 3) -> dict[str, float]:
    """Best-of-`trials` time (ms) of each form on `x` after one warm-up call; no autograd."""
    x = x.detach()
    sync = (lambda: torch.cuda.synchronize(x.device)) if x.is_cuda else (lambda: None)
    times = {}
    with torch.no_grad():
        for form in forms:
            layer.compute(form, x)
            best = math.inf
            for _ in range(trials):
                sync()
                start = time.perf_counter()
                layer.compute(form, x)
                sync()
                best = min(best, time.perf_counter() - start)
            times[form] = 1000 * best
    return times


def set_upsampling_form(model: nn.Module, form: str | None) -> int:
    """Force `form` (None: automatic) on every fixed upsampling in `model`; returns how many."""
    layers = [m for m in model.modules() if isinstance(m, FixedBilinearUpsampling)]
    for layer in layers:
        layer.set_form(form)
    return len(layers)
