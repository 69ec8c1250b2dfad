"""Which images each optimizer step trains on, and their loading ahead of the step.

The reference solvers draw training images at random with replacement. Here the draw of step
``s`` is a pure function of (seed, s): a resumed run needs no saved generator state, DataLoader
workers may load ahead in any order, and every process of a multi-process run computes the
same global minibatch and takes its own share of it (images rank, rank + world, ...). The
minibatch, and so the paper's effective batch of 20, stays the same whatever the process count.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from segcore.config.schema import ConfigError
from segcore.train.runtime import Runtime


def step_draw(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
    """The dataset indices of step ``step``'s whole minibatch (all ranks), with replacement."""
    return np.random.Generator(np.random.PCG64([seed, step])).integers(0, n, size=batch_size)


def micro_seed(seed: int, step: int, position: int) -> int:
    """The torch seed for the forward pass whose first image sits at ``position`` of the minibatch.

    Why: dropout masks then depend on the image's place in the run, not on how many forward
    passes the process made before, so one process and N processes draw the same masks.
    """
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1)[0])


def positions(batch_size: int, runtime: Runtime) -> list[int]:
    """Where this rank's images sit in the minibatch."""
    return list(range(runtime.rank, batch_size, runtime.world))


class StepBatches(Sampler[list[int]]):
    """For each step from ``start`` to ``stop``: the indices of this rank's share of the minibatch."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, runtime: Runtime):
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.rank, self.world = runtime.rank, runtime.world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield step_draw(self.seed, step, self.n, self.batch_size)[self.rank::self.world].tolist()


def _items(batch: list) -> list:
    return batch  # keep the items apart: whole images differ in size, so they cannot be stacked


def step_loader(dataset, batch_size: int, seed: int, start: int, stop: int, runtime: Runtime) -> DataLoader:
    """Yields, step after step, this rank's list of dataset items; workers and pinned memory on GPUs."""
    if batch_size < runtime.world:
        raise ConfigError(f"batch_size = {batch_size} is smaller than the {runtime.world} training processes; "
                         f"every process needs at least one image per step")
    workers = runtime.workers
    return DataLoader(dataset, batch_sampler=StepBatches(len(dataset), batch_size, seed, start, stop, runtime),
                      collate_fn=_items, num_workers=workers, pin_memory=runtime.device.type == "cuda",
                      prefetch_factor=4 if workers else None, persistent_workers=False,
                      worker_init_fn=_one_thread if workers else None)


def _one_thread(_: int) -> None:
    """Loader workers only decode and augment: one thread each keeps them off the training's cores."""
    torch.set_num_threads(1)
