"""Nets with several output heads on one trunk (SIFT Flow: 33 semantic + 3 geometric classes).

A multi-head net is built with ``n_classes`` as a dict ({"sem": 33, "geo": 3}) and returns the
heads' logits concatenated along channels, so it keeps the one model contract (logits (N, K, H, W)
at input size). Its labels carry one plane per head: (N, heads, H, W) instead of (N, H, W).
These helpers split both back per head, so the training and evaluation code serve one-head and
multi-head nets alike.
"""

from __future__ import annotations

import torch


def sizes(n_classes: int | dict[str, int]) -> tuple[int, ...]:
    """Class count of every head, in output order."""
    return (n_classes,) if isinstance(n_classes, int) else tuple(n_classes.values())


def names(n_classes: int | dict[str, int]) -> tuple[str, ...]:
    """Head names ("" for a one-head net)."""
    return ("",) if isinstance(n_classes, int) else tuple(n_classes)


def split_logits(logits: torch.Tensor, n_classes: int | dict[str, int]) -> list[torch.Tensor]:
    """(N, K, H, W) -> one (N, k_h, H, W) per head."""
    parts = sizes(n_classes)
    if logits.shape[1] != sum(parts):
        raise ValueError(f"logits have {logits.shape[1]} channels but the heads {parts} need {sum(parts)}")
    return list(logits.split(parts, dim=1))


def split_labels(label: torch.Tensor, n_classes: int | dict[str, int]) -> list[torch.Tensor]:
    """(N, H, W) for one head, (N, heads, H, W) for several -> one (N, H, W) per head."""
    n = len(sizes(n_classes))
    if n == 1 and label.dim() == 3:
        return [label]
    if label.dim() != 4 or label.shape[1] != n:
        raise ValueError(f"labels of shape {tuple(label.shape)} do not fit {n} head(s): "
                         f"expected (N, H, W) for one head or (N, {n}, H, W)")
    return list(label.unbind(1))
