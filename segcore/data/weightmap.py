"""The U-Net loss weight map (paper Eq. 2), precomputed per ground-truth image.

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)),   w0 = 10, sigma = 5 px

- Cells are instances: the 4-connected components of a binary label (1 = cell, 0 = membrane), or
  given instance labels (0 = background). Instances that touch are separated first: every cell
  pixel with a different instance in its 3x3 neighbourhood becomes border (background), so the
  training target has a gap between any two cells (what "morphological operations" produce).
- d1 / d2: Euclidean distance to the nearest / second-nearest cell (1 for a pixel next to a cell).
  The border term is applied to background pixels only: inside a cell d1 = 0, and the paper's
  term is meant for the separating borders (its Fig. 3d is dark inside the cells).
- w_c (the paper gives no formula): inverse class frequency normalised so the more frequent class
  gets 1: w_c(k) = max_j f_j / f_k, frequencies from the same label (or passed in, e.g. from the
  whole training set). A class absent from the label gets 1 (it has no pixel to weigh).
- `border_weights=False` gives w = w_c: the ablation "same net trained without the border term".

Cost: one distance transform per cell over its bounding box grown by R = sigma * sqrt(2 ln 1e6)
(27 px at sigma 5): O(sum over cells of (h_i + 2R)(w_i + 2R)), not O(cells * H * W). Pixels beyond
R from a cell get no term from it; the term dropped there is below w0 * 1e-6.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage

W0 = 10.0
SIGMA = 5.0
_TRUNCATE = 1e-6  # relative size of the largest border term dropped by the bounded windows
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


class WeightMap(NamedTuple):
    """Per-pixel training target and loss weight of one image."""

    target: np.ndarray  # (H, W) int64: 1 = cell, 0 = membrane or separation border
    weight: np.ndarray  # (H, W) float32, >= 1 where the class is the more frequent one


def separate_touching(instances: np.ndarray) -> np.ndarray:
    """Copy of (H, W) instance labels with every pixel next to (3x3) another instance set to 0."""
    fg = instances > 0
    big = np.iinfo(instances.dtype).max
    highest = ndimage.grey_dilation(instances, size=3)  # largest label nearby (0 never wins over a cell)
    lowest = ndimage.grey_erosion(np.where(fg, instances, big), size=3)  # smallest cell label nearby
    touching = fg & ((highest != instances) | (lowest != instances))
    out = instances.copy()
    out[touching] = 0
    return out


def cell_instances(label: np.ndarray, *, instance_labels: bool = False) -> np.ndarray:
    """(H, W) int32 cell instances, 0 = background, from a binary or an instance label.

    Binary (`instance_labels=False`): values must be 0/1 (or bool); cells are its 4-connected
    components. Instance labels: non-negative integers, 0 = background; touching instances are
    separated (`separate_touching`).
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {label.shape}")
    if instance_labels:
        if not np.issubdtype(label.dtype, np.integer) or (label.size and label.min() < 0):
            raise ValueError(f"instance labels must be non-negative integers, got dtype {label.dtype}")
        return separate_touching(label.astype(np.int32))
    values = np.unique(label)
    if not set(values.tolist()) <= {0, 1}:
        raise ValueError(f"binary label must hold only 0 (membrane) and 1 (cell), found {values[:8].tolist()}"
                         " (for 255-coded labels pass label == 255; for instances instance_labels=True)")
    instances, _ = ndimage.label(label.astype(bool), structure=FOUR_CONNECTED)
    return instances.astype(np.int32)


def class_weights(target: np.ndarray) -> tuple[float, float]:
    """(w_membrane, w_cell) = max frequency / frequency of each class of a 0/1 target (any shape)."""
    counts = np.bincount(np.asarray(target, dtype=np.int64).ravel(), minlength=2)[:2].astype(np.float64)
    top = counts.max()
    w = [top / c if c > 0 else 1.0 for c in counts]
    return w[0], w[1]


def nearest_two_distances(instances: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """(d1, d2), each (H, W) float64: distance to the nearest / second-nearest cell, inf beyond `reach`."""
    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    r = int(math.ceil(reach))
    h, w = instances.shape
    for index, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:  # a label number with no pixel
            continue
        win = (slice(max(box[0].start - r, 0), min(box[0].stop + r, h)),
               slice(max(box[1].start - r, 0), min(box[1].stop + r, w)))
        # The whole cell lies inside its window, so these distances are exact within it.
        d = ndimage.distance_transform_edt(instances[win] != index)
        near, second = d1[win], d2[win]  # views: updated in place
        second[...] = np.minimum(second, np.maximum(near, d))
        near[...] = np.minimum(near, d)
    return d1, d2


def border_term(instances: np.ndarray, w0: float = W0, sigma: float = SIGMA) -> np.ndarray:
    """(H, W) float64: w0 * exp(-(d1 + d2)^2 / (2 sigma^2)) on background pixels, 0 on cells."""
    reach = sigma * math.sqrt(2 * math.log(1 / _TRUNCATE))
    d1, d2 = nearest_two_distances(instances, reach)
    term = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma ** 2))  # inf distances give exactly 0
    term[instances > 0] = 0.0
    return term


def weight_map(label: np.ndarray, *, instance_labels: bool = False, w0: float = W0,
               sigma: float = SIGMA, border_weights: bool = True,
               class_weight: tuple[float, float] | None = None) -> WeightMap:
    """Training target and weight map of one (H, W) label (see the module docstring).

    `class_weight` = (w_membrane, w_cell) overrides the per-image balancing (e.g. weights from
    `class_weights` over the whole training stack).
    """
    if w0 < 0 or sigma <= 0:
        raise ValueError(f"need w0 >= 0 and sigma > 0, got w0={w0}, sigma={sigma}")
    instances = cell_instances(label, instance_labels=instance_labels)
    target = (instances > 0).astype(np.int64)
    wc = class_weights(target) if class_weight is None else class_weight
    if len(wc) != 2 or min(wc) <= 0:
        raise ValueError(f"class_weight must be two positive numbers (membrane, cell), got {wc!r}")
    weight = np.where(target == 1, wc[1], wc[0])
    if border_weights:
        weight = weight + border_term(instances, w0, sigma)
    return WeightMap(target, weight.astype(np.float32))
