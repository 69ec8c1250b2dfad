"""Segmentation metrics from one confusion matrix (FCN paper Section 5).

The matrix is accumulated over a whole split, never averaged per image; void pixels (any label
outside ``[0, n)``, 255 in VOC) drop out before counting.
"""

from __future__ import annotations

import numpy as np
import torch


def confusion(label: torch.Tensor | np.ndarray, pred: torch.Tensor | np.ndarray, n: int) -> np.ndarray:
    """(n, n) int64 matrix: hist[i, j] = pixels of true class i predicted as j."""
    label = torch.as_tensor(label).reshape(-1).long()
    pred = torch.as_tensor(pred).reshape(-1).long()
    if label.shape != pred.shape:
        raise ValueError(f"label has {label.numel()} pixels but prediction has {pred.numel()}")
    keep = (label >= 0) & (label < n)
    flat = n * label[keep] + pred[keep]
    return torch.bincount(flat, minlength=n * n).reshape(n, n).numpy()


def scores(hist: np.ndarray, exclude_absent: bool = False) -> dict[str, float]:
    """Pixel acc., mean acc., mean IU and f.w. IU (as fractions) from a confusion matrix.

    Classes absent from the ground truth (row sum 0) are skipped by mean acc. (nanmean). For mean
    IU they are also skipped unless predicted, in which case they count 0, as in the reference
    code. ``exclude_absent=True`` (SIFT Flow) drops them from every mean, predicted or not.
    """
    hist = np.asarray(hist, dtype=np.float64)
    total = hist.sum()
    if total == 0:
        raise ValueError("confusion matrix is empty: no labelled pixel was scored")
    diag = np.diag(hist)
    rows, cols = hist.sum(1), hist.sum(0)
    present = rows > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag / rows
        iu = diag / (rows + cols - diag)
    if exclude_absent:
        iu = np.where(present, iu, np.nan)
    freq = rows / total
    return {
        "pixel_acc": float(diag.sum() / total),
        "mean_acc": float(np.nanmean(acc)),
        "mean_iu": float(np.nanmean(iu)),
        "fw_iu": float((freq[freq > 0] * iu[freq > 0]).sum()),
    }


def predicted_classes(hist: np.ndarray) -> list[int]:
    """The classes the net predicted for at least one scored pixel: the matrix's non-zero columns.

    One class alone is the constant answer (every pixel background): its scores are not a result.
    """
    return [int(c) for c in np.flatnonzero(np.asarray(hist).sum(0))]


def per_class_iu(hist: np.ndarray, names: list[str]) -> dict[str, float | None]:
    """IU of every class by name; None where the class is neither present nor predicted."""
    hist = np.asarray(hist, dtype=np.float64)
    diag = np.diag(hist)
    union = hist.sum(1) + hist.sum(0) - diag
    return {name: (float(d / u) if u > 0 else None) for name, d, u in zip(names, diag, union)}
