"""Where and how a stage computes: device, precision, memory format, loader workers and processes.

``params.yaml``'s ``runtime`` section says what the user asked for ("auto", "mixed"); a
:class:`Runtime` is what it resolved to on the machine at hand (CUDA or CPU, bf16 or fp16, rank 3 of
4), so every number can name what produced it. One process is the default; under ``torchrun``
each process is one rank of a DistributedDataParallel run (nccl on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import torch

from segcore.config.params import LAUNCH
from segcore.config.schema import ConfigError
from segcore.core.device import environment, pick_device, place

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class Runtime:
    """A resolved compute setting; one per process."""

    device: torch.device
    precision: Precision = "fp32"
    channels_last: bool = True
    workers: int = 0
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Only the first rank writes files, logs curves and prints progress."""
        return self.rank == 0

    def place(self, t: torch.nn.Module | torch.Tensor):
        """Move a net or a batch to the device, 4-D tensors and nets in channels_last if asked (device.place)."""
        return place(t, self.device, self.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's autocast region: a no-op in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[
            self.precision]))

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16 (its gradients underflow otherwise); disabled, a pass-through, otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def signature(self) -> str:
        """What changes the numbers a training run produces: 'cuda/bf16/nhwc/x4'. Not the worker count."""
        return f"{self.device.type}/{self.precision}/{'nhwc' if self.channels_last else 'nchw'}/x{self.world}"

    def record(self) -> dict[str, object]:
        """The facts a model file and its metrics carry about the run that trained it."""
        return {**environment(self.device), "precision": self.precision, "processes": self.world,
                "channels_last": self.channels_last}

    # --- collective operations: identities when there is one process ---

    def all_reduce_sum(self, value):
        """Sum a float, or an integer numpy array (confusion matrices), over all ranks."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        on = self.device if self.device.type == "cuda" else torch.device("cpu")  # nccl reduces on the GPU
        if isinstance(value, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(value)).to(on)
            dist.all_reduce(t)
            return t.cpu().numpy()
        t = torch.tensor([value], dtype=torch.float64, device=on)
        dist.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The net that training calls: DistributedDataParallel around ``model`` across ranks, else itself."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def shard(self, dataset):
        """This rank's share of ``dataset`` (items rank, rank + world, ...); all of it with one process.

        Why not torch's DistributedSampler: it pads the last round with repeated items so every
        rank has as many, and a confusion matrix summed over ranks would count those twice.
        """
        return dataset if self.world == 1 else Shard(dataset, self.rank, self.world)


class Shard:
    """Every ``world``-th item of a dataset from ``rank`` on; IndexError past the end, as datasets do."""

    def __init__(self, dataset, rank: int, world: int):
        self.dataset, self.indices = dataset, range(rank, len(dataset), world)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]  # range raises IndexError past the end


def resolve(device: str = "auto", precision: str = "fp32", channels_last: bool = True,
            workers: int | str = "auto", env: Mapping[str, str] | None = None) -> Runtime:
    """The Runtime for this process; joins the process group when launched by torchrun.

    ``precision``: fp32, or mixed = bf16 autocast where the device supports it, else fp16 with a
    gradient scaler. ``workers``: DataLoader worker processes per rank; auto = none on the CPU
    (whose cores the training uses), 4 per GPU rank within the machine's cores. ``env``: the
    process environment (torchrun's RANK, LOCAL_RANK and WORLD_SIZE); os.environ by default.
    """
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank, local = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError(f"runtime.device = {device} but no CUDA device is visible; use auto or cpu")
        if world > 1:
            if local >= count:
                raise ConfigError(f"torchrun started local rank {local} but only {count} GPU(s) are visible; "
                                 f"use --nproc_per_node <= {count}")
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if precision == "mixed":
        precision = mixed_precision(dev)
    elif precision != "fp32":
        raise ValueError(f"runtime.precision = {precision!r} is not allowed; use fp32 or mixed")
    if workers == "auto":
        workers = 0 if dev.type == "cpu" else min(4, max(0, (os.cpu_count() or 1) // world - 1))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Runtime(device=dev, precision=precision, channels_last=channels_last, workers=int(workers),
                   rank=rank, world=world)


def from_view(rt: dict) -> Runtime:
    """The Runtime from a resolved view's ``runtime`` part (segcore.pipeline.views): device, channels_last,
    and for training precision and loader workers."""
    return resolve(rt["device"], rt.get("precision", "fp32"), rt["channels_last"], rt.get("workers", "auto"))


def mixed_precision(device: torch.device) -> Precision:
    """bf16 where the device computes it (CPUs, Ampere and later GPUs): no loss scaling needed; else fp16."""
    return "bf16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "fp16"


def finish(runtime: Runtime) -> None:
    """Leave the process group cleanly (torchrun warns otherwise)."""
    if runtime.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def under_launcher() -> bool:
    """True in a process that torchrun started (it sets LOCAL_RANK for every worker)."""
    return "LOCAL_RANK" in os.environ


def launch_workers(launch: str, script: Path, args: Sequence[str]) -> int:
    """Run ``script args`` under torchrun as ``launch`` says; returns torchrun's exit status.

    ``launch`` is params' ``runtime.launch``, validated by the params stage and checked again here.
    It never reaches a shell: its flags become an argument list of ``python -m torch.distributed.run``.
    """
    if not LAUNCH.fullmatch(launch) or launch == "python":
        raise ConfigError(f"runtime.launch = {launch!r} is not a torchrun launch; use torchrun --nproc_per_node=N")
    flags = shlex.split(launch)[1:]
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *flags, str(script), *args]).returncode
