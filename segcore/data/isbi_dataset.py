"""ISBI 2012 training and evaluation samples for U-Net (Ronneberger et al., Sec. 3).

Training items carry the paper's weight map (segcore.data.weightmap) and are augmented on the fly
(segcore.data.augment: elastic deformation on a 3x3 grid, shift, rotation, grey values). The training
loop draws item indices from its own seeded generator; an index names a slice *and* an
augmentation draw (index = draw * slices + slice), so the samples a run sees are fixed by the
seed, and a resumed run continues with exactly the samples the killed one would have seen.
"""

from __future__ import annotations

import numpy as np
import torch

from segcore.data.augment import augment
from segcore.data.isbi import CELL
from segcore.data.preprocess import Preprocess
from segcore.data.weightmap import weight_map

# Grey EM slices: [0, 1], centred and scaled (EM intensities sit around 0.5 with a spread of ~0.2).
GREY = Preprocess("RGB", 1 / 255, (0.5,), (0.2,))
DRAWS = 1_000_000  # augmentation draws per slice: more than any schedule uses


def slice_id(index: int) -> str:
    return f"slice{index:02d}"


def normalise(image01: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """(H, W) float in [0, 1] -> (1, H, W) float32, as ``pre`` normalises (scale already applied)."""
    return torch.from_numpy((np.asarray(image01, np.float32) - pre.mean[0]) / pre.std[0])[None]


class IsbiDataset(torch.utils.data.Dataset):
    """Slices ``indices`` of a stack: (x (1, H, W), target (H, W) 0 = membrane / 1 = cell, id[, weight]).

    With ``train=True`` items are augmented and carry the weight map as a 4th element (the
    training loop weights the pixel loss with it); ``border_weights=False`` keeps only the class
    balancing (the ablation of the paper's separation-border weights).
    """

    def __init__(self, volume: np.ndarray, labels: np.ndarray, indices, pre: Preprocess = GREY, *,
                 train: bool = False, border_weights: bool = True, seed: int = 0) -> None:
        self.indices = [int(i) for i in indices]
        if not self.indices:
            raise ValueError("an ISBI split needs at least one slice")
        self.volume, self.pre, self.train, self.seed = volume, pre, train, seed
        if train:  # training targets separate touching cells; the weight map stresses those borders
            maps = [weight_map((labels[i] == CELL).astype(np.uint8), border_weights=border_weights)
                    for i in self.indices]
            self.targets, self.weights = [m.target for m in maps], [m.weight for m in maps]
        else:  # evaluation scores against the annotation as published
            self.targets = [(labels[i] == CELL).astype(np.int64) for i in self.indices]
            self.weights = [None] * len(self.indices)

    @property
    def ids(self) -> list[str]:
        """The distinct images of the split (training records its size and overlap with validation)."""
        return [slice_id(i) for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices) * (DRAWS if self.train else 1)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):  # plain iteration stops at IndexError
            raise IndexError(f"item {index} of {len(self)}")
        k = index % len(self.indices)
        image01 = self.volume[self.indices[k]].astype(np.float64) / 255
        target, weight = self.targets[k], self.weights[k]
        name = slice_id(self.indices[k])
        if not self.train:
            return normalise(image01, self.pre), torch.from_numpy(target), name
        out = augment(image01, target, np.random.default_rng([self.seed, index]), weight)
        return (normalise(out.image, self.pre), torch.from_numpy(out.label.astype(np.int64)), name,
                torch.from_numpy(out.weight))
