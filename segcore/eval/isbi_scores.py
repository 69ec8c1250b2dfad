"""ISBI 2012 EM segmentation scores: pixel, foreground-restricted Rand and warping error.

Conventions:
- Prediction: a cell probability map in [0, 1] (foreground = cell interior). It is thresholded at
  0.0, 0.1, ..., 0.9: value > t is cell. (A membrane probability m goes in as 1 - m.)
- Ground truth: uint8 labels, 255 = cell interior, 0 = membrane (the published train-labels.tif).
- Cells are the 4-connected components of the foreground; membrane is 8-connected background.
- Each metric reports its best threshold (lowest error), chosen per metric, as the challenge did.

Metrics at one threshold:
- pixel error (`pixel_error`): 1 - F-score of the cell pixels (precision TP/(TP+FP), recall
  TP/(TP+FN)); `pixel_error_plain`: fraction of pixels that differ. Both are reported.
- Rand error: 1 - F-score of the foreground-restricted Rand index. Only ground-truth cell pixels
  count (GT membrane rows dropped from the contingency table); proposal membrane pixels are not
  one segment but singletons, which pair with nothing. Pairs counted as n(n-1)/2. Precision =
  pairs together in both / pairs together in the proposal; recall = ... / pairs together in GT.
- warping error (Jain et al., CVPR 2010): the GT is warped toward the prediction by flipping
  simple points (4-connected foreground, 8-connected background) inside a mask (GT pixels within
  distance 5 of the GT membrane, membrane included); the leftover disagreements that are splits or
  merges are counted, divided by the number of pixels (see `warp_ground_truth`,
  `split_merge_pixels`).

A stack is scored from counts summed over its slices at each threshold (pixel counts, Rand pair
counts, split/merge pixels), then the best threshold for the whole stack (`score_stack`). Cells
are 2D (per slice); with equal slice sizes the warping error equals the mean over slices.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import ndimage

THRESHOLDS = tuple(i / 10 for i in range(10))
WARP_RADIUS = 5.0
FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = ndimage.generate_binary_structure(2, 2)
# 8-neighbourhood offsets (dy, dx); bit k of a neighbourhood code is neighbour k.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def cells(fg: np.ndarray) -> np.ndarray:
    """(H, W) int32 labels of the 4-connected components of a boolean foreground, 0 = background."""
    return ndimage.label(fg, structure=FOUR)[0].astype(np.int32)


def f_score(together: float, predicted: float, actual: float) -> tuple[float, float, float]:
    """(precision, recall, F) from matches, predicted positives and actual positives.

    An empty denominator gives 1 (nothing claimed / nothing to find is not an error).
    """
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f


def pixel_counts(pred_fg: np.ndarray, gt_fg: np.ndarray) -> np.ndarray:
    """[TP, FP, FN, TN] of cell pixels, int64."""
    tp = np.count_nonzero(pred_fg & gt_fg)
    fp = np.count_nonzero(pred_fg & ~gt_fg)
    fn = np.count_nonzero(~pred_fg & gt_fg)
    return np.array([tp, fp, fn, pred_fg.size - tp - fp - fn], np.int64)


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def rand_pair_counts(gt_cells: np.ndarray, pred_cells: np.ndarray) -> np.ndarray:
    """[pairs together in both, in the proposal, in the GT] over GT cell pixels (0 = background)."""
    keep = gt_cells > 0
    g, p = gt_cells[keep].astype(np.int64), pred_cells[keep].astype(np.int64)
    in_segment = p > 0  # proposal background pixels are singletons: no pairs
    joint = g[in_segment] * (p.max(initial=0) + 1) + p[in_segment]
    both = _pairs(np.unique(joint, return_counts=True)[1])
    proposal = _pairs(np.bincount(p[in_segment]))
    truth = _pairs(np.bincount(g))
    return np.array([both, proposal, truth], np.int64)


@lru_cache(maxsize=1)
def simple_point_table() -> np.ndarray:
    """(256,) bool: is the centre of each 8-neighbourhood configuration a simple point?

    Simple (4-connected foreground, 8-connected background) iff the neighbourhood's foreground
    has exactly one 4-component 4-adjacent to the centre and its background exactly one
    8-component (topological numbers T4 = T8 = 1); then flipping the centre keeps the topology.
    """
    table = np.zeros(256, bool)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    for code in range(256):
        fg = np.zeros((3, 3), bool)
        for k, (dy, dx) in enumerate(_OFFSETS):
            fg[1 + dy, 1 + dx] = bool(code >> k & 1)
        fg_labels = ndimage.label(fg, structure=FOUR)[0]
        t4 = len({fg_labels[y, x] for y, x in ((0, 1), (1, 0), (1, 2), (2, 1))} - {0})
        t8 = ndimage.label(ring & ~fg, structure=EIGHT)[1]
        table[code] = t4 == 1 and t8 == 1
    return table


def neighbour_codes(fg: np.ndarray) -> np.ndarray:
    """(H, W) uint8 code of each pixel's 8 neighbours (outside the image counts as background)."""
    padded = np.pad(fg, 1)
    h, w = fg.shape
    code = np.zeros((h, w), np.uint8)
    for k, (dy, dx) in enumerate(_OFFSETS):
        code |= padded[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w].astype(np.uint8) << k
    return code


def warp_mask(gt_fg: np.ndarray, radius: float = WARP_RADIUS) -> np.ndarray:
    """Pixels the warp may flip: GT membrane and GT cell pixels within `radius` of it."""
    if gt_fg.all():
        return np.zeros_like(gt_fg)
    return ndimage.distance_transform_edt(gt_fg) <= radius


def warp_ground_truth(gt_fg: np.ndarray, pred_fg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Topology-preserving warp of `gt_fg` toward `pred_fg`: flip simple, masked mismatches.

    Greedy descent: every flip removes one disagreement. Binary inputs make all disagreements
    equal, so points are flipped in sweeps over the four (row, column) parity classes: two
    points of one class are >= 2 px apart, outside each other's 3x3 neighbourhood, so flipping
    them together equals flipping them one by one. Stops when no simple point disagrees.
    """
    table = simple_point_table()
    warped = gt_fg.copy()
    yy, xx = np.indices(gt_fg.shape)
    classes = [(yy % 2 == py) & (xx % 2 == px) & mask for py in (0, 1) for px in (0, 1)]
    changed = True
    while changed:
        changed = False
        for cls in classes:
            flip = cls & (warped != pred_fg)
            if not flip.any():
                continue
            flip &= table[neighbour_codes(warped)]
            if flip.any():
                warped[flip] = ~warped[flip]
                changed = True
    return warped


def _bridging(region: np.ndarray, connectivity: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Pixels of the components of `region` that are 4-adjacent to >= 2 different `segments`."""
    comps, n = ndimage.label(region, structure=connectivity)
    if n == 0:
        return np.zeros_like(region)
    h, w = region.shape
    padded = np.pad(segments, 1)
    touching = []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        neighbour = padded[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]
        hit = (comps > 0) & (neighbour > 0)
        touching.append(comps[hit].astype(np.int64) * (segments.max() + 1) + neighbour[hit])
    pairs = np.unique(np.concatenate(touching))
    n_touched = np.bincount(pairs // (segments.max() + 1), minlength=n + 1)
    return n_touched[comps] >= 2


def split_merge_pixels(warped: np.ndarray, pred_fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(split, merge) boolean maps of the disagreements left after warping.

    merge: a 4-connected run of predicted cell over warped-GT membrane touching >= 2 warped-GT
    cells (where the prediction agrees they are cell); split: an 8-connected run of predicted
    membrane over a warped-GT cell touching >= 2 predicted cells. Other leftovers (added or
    deleted objects, holes) are not counted, as in the challenge's splits-and-mergers variant.
    """
    agree = warped & pred_fg
    merge = _bridging(pred_fg & ~warped, FOUR, np.where(agree, cells(warped), 0))
    split = _bridging(~pred_fg & warped, EIGHT, np.where(agree, cells(pred_fg), 0))
    return split, merge


def _binary_ground_truth(gt: np.ndarray) -> np.ndarray:
    gt = np.asarray(gt)
    values = np.unique(gt)
    if gt.ndim != 2 or not set(values.tolist()) <= {0, 255}:
        raise ValueError(f"ground truth must be (H, W) with 255 = cell, 0 = membrane; got shape "
                         f"{gt.shape}, values {values[:8].tolist()}")
    return gt == 255


def _probabilities(prob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    prob = np.asarray(prob, np.float64)
    if prob.shape != shape:
        raise ValueError(f"prediction shape {prob.shape} differs from the ground truth's {shape}")
    if not np.isfinite(prob).all() or prob.min(initial=0) < 0 or prob.max(initial=0) > 1:
        raise ValueError(f"prediction must be cell probabilities in [0, 1], got range "
                         f"[{np.nanmin(prob)}, {np.nanmax(prob)}]")
    return prob


def slice_counts(prob: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = THRESHOLDS, *,
                 warping: bool = True, radius: float = WARP_RADIUS) -> dict[str, np.ndarray]:
    """Counts of one slice at each threshold: pixel (T, 4) [TP, FP, FN, TN], rand (T, 3) pair
    counts, warp (T, 2) [split, merge] pixels (zeros if not `warping`), n_pixels ()."""
    gt_fg = _binary_ground_truth(gt)
    prob = _probabilities(prob, gt_fg.shape)
    gt_cells, mask = cells(gt_fg), warp_mask(gt_fg, radius)
    pixel, rand, warp = [], [], []
    for t in thresholds:
        pred = prob > t
        pixel.append(pixel_counts(pred, gt_fg))
        rand.append(rand_pair_counts(gt_cells, cells(pred)))
        if warping:
            split, merge = split_merge_pixels(warp_ground_truth(gt_fg, pred, mask), pred)
            warp.append([np.count_nonzero(split), np.count_nonzero(merge)])
        else:
            warp.append([0, 0])
    return {"pixel": np.array(pixel), "rand": np.array(rand), "warp": np.array(warp, np.int64),
            "n_pixels": np.array(prob.size, np.int64)}


def scores_from_counts(counts: dict[str, np.ndarray], thresholds: Sequence[float] = THRESHOLDS
                       ) -> dict[str, float]:
    """Best value (and its threshold) of each metric from (summed) `slice_counts`; flat dict."""
    n = float(counts["n_pixels"])
    tp, fp, fn = counts["pixel"][:, 0], counts["pixel"][:, 1], counts["pixel"][:, 2]
    errors = {
        "pixel_error": [1 - f_score(a, a + b, a + c)[2] for a, b, c in zip(tp, fp, fn)],
        "pixel_error_plain": list((fp + fn) / n),
        "rand_error": [1 - f_score(*row)[2] for row in counts["rand"]],
        "warping_error": list(counts["warp"].sum(1) / n),
    }
    out: dict[str, float] = {}
    for name, values in errors.items():
        best = int(np.argmin(values))  # the first threshold wins a tie
        out[name], out[f"{name}_threshold"] = float(values[best]), float(thresholds[best])
    best = int(np.argmin(errors["warping_error"]))
    out["splits"], out["merges"] = (float(v) for v in counts["warp"][best])
    return out


def score_stack(probs: Sequence[np.ndarray] | np.ndarray, gts: Sequence[np.ndarray] | np.ndarray,
                thresholds: Sequence[float] = THRESHOLDS, *, warping: bool = True,
                radius: float = WARP_RADIUS) -> dict[str, float]:
    """Challenge-style scores of a stack (S, H, W): counts summed over slices, then the best
    threshold per metric for the whole stack. Also takes single (H, W) slices."""
    if np.ndim(probs) == 2:
        probs, gts = [probs], [gts]
    if len(probs) != len(gts) or len(probs) == 0:
        raise ValueError(f"need as many prediction slices as ground-truth slices (>= 1), got "
                         f"{len(probs)} and {len(gts)}")
    if not thresholds or min(thresholds) < 0 or max(thresholds) >= 1:
        raise ValueError(f"thresholds must be a non-empty list in [0, 1), got {list(thresholds)}")
    total: dict[str, np.ndarray] | None = None
    for prob, gt in zip(probs, gts):
        c = slice_counts(prob, gt, thresholds, warping=warping, radius=radius)
        total = c if total is None else {k: total[k] + v for k, v in c.items()}
    assert total is not None
    scores = scores_from_counts(total, thresholds)
    if not warping:
        for key in ("warping_error", "warping_error_threshold", "splits", "merges"):
            scores.pop(key)
    return scores
