"""Whole-image inference and split-level scoring (FCN paper Section 5, reference eval code).

Images are scored at native resolution, one at a time (batch 1, no resizing), into one
confusion matrix per split.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from segcore.metrics import confusion


@torch.inference_mode()
def predict(model: nn.Module, image: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Class map (H, W) int64 of one preprocessed image (3, H, W); model must be in eval mode."""
    logits = model(image.unsqueeze(0).to(device))  # (1, K, H, W)
    return logits.argmax(1)[0].cpu()


def accumulate(model: nn.Module, dataset: Iterable, n_classes: int,
               device: torch.device | str = "cpu", keep: int = 0) -> tuple[np.ndarray, dict]:
    """Confusion matrix over a dataset of (image, label, id); also returns the first ``keep`` predictions."""
    was_training = model.training
    model.eval()
    hist = np.zeros((n_classes, n_classes), dtype=np.int64)
    kept: dict[str, np.ndarray] = {}
    try:
        for image, label, sample_id in dataset:
            pred = predict(model, image, device)
            hist += confusion(label, pred, n_classes)
            if len(kept) < keep:
                kept[sample_id] = pred.numpy().astype(np.uint8)
    finally:
        model.train(was_training)
    return hist, kept


def write_submission(predictions: Iterable[tuple[str, np.ndarray]], palette: list[int], out: Path,
                     inner: str = "results/VOC2012/Segmentation/comp6_test_cls") -> int:
    """Stream (id, class map) pairs into a tar of palette PNGs laid out for the VOC evaluation server.

    Returns the number of images written. Streaming keeps memory flat over the 1,456 test images.
    """
    from PIL import Image

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        count = 0
        for sample_id, pred in predictions:
            png = Image.fromarray(pred.astype(np.uint8), mode="P")
            png.putpalette(palette)
            buf = io.BytesIO()
            png.save(buf, format="PNG")
            info = tarfile.TarInfo(f"{inner}/{sample_id}.png")
            info.size = buf.tell()
            info.mtime = 0  # reproducible archive
            buf.seek(0)
            tar.addfile(info, buf)
            count += 1
    os.replace(tmp, out)
    return count
