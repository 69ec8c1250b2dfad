"""Whole-image inference and split-level scoring (FCN paper Section 5, reference eval code).

Images are scored at native resolution, one at a time (batch 1, no resizing), into one
confusion matrix per split.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from segcore.models import heads
from segcore.core.device import place
from segcore.eval.metrics import confusion


@torch.inference_mode()
def predict(model: nn.Module, image: torch.Tensor, device: torch.device | str = "cpu",
            channels_last: bool = True) -> torch.Tensor:
    """Class map (H, W) int64 of one preprocessed image (3, H, W); model must be in eval mode."""
    logits = model(place(image.unsqueeze(0), device, channels_last))  # (1, K, H, W)
    return logits.argmax(1)[0].cpu()


def accumulate(model: nn.Module, dataset: Iterable, n_classes: int,
               device: torch.device | str = "cpu", keep: int = 0) -> tuple[np.ndarray, dict]:
    """Confusion matrix over a dataset of (image, label, id); also returns the first ``keep`` predictions."""
    hists, kept = accumulate_heads(model, dataset, n_classes, device, keep)
    return hists[0], kept


def accumulate_heads(model: nn.Module, dataset: Iterable, n_classes: int | dict[str, int],
                     device: torch.device | str = "cpu", keep: int = 0,
                     channels_last: bool = True) -> tuple[list[np.ndarray], dict]:
    """One confusion matrix per head (segcore.models.heads); kept predictions are the first head's maps."""
    was_training = model.training
    model.eval()
    hists = [np.zeros((n, n), dtype=np.int64) for n in heads.sizes(n_classes)]
    kept: dict[str, np.ndarray] = {}
    try:
        for image, label, sample_id in dataset:
            with torch.inference_mode():
                logits = model(place(image.unsqueeze(0), device, channels_last))  # (1, K, H, W)
            parts = [p.argmax(1).cpu() for p in heads.split_logits(logits, n_classes)]  # (1, H, W) each
            planes = heads.split_labels(label.unsqueeze(0), n_classes)
            for hist, part, plane, n in zip(hists, parts, planes, heads.sizes(n_classes)):
                hist += confusion(plane, part, n)
            if len(kept) < keep:
                kept[sample_id] = parts[0][0].numpy().astype(np.uint8)
    finally:
        model.train(was_training)
    return hists, kept


def write_submission(predictions: Iterable[tuple[str, np.ndarray]], palette: list[int], out: Path,
                     inner: str) -> int:
    """Stream (id, class map) pairs into a tar of palette PNGs ``<inner>/<id>.png`` for an evaluation server.

    ``inner``: the server's folder, e.g. VOC's results/VOC2012/Segmentation/comp6_test_cls
    (segcore.data.voc.submission_folder). Returns the number of images written. Streaming keeps
    memory flat over the 1,456 VOC2012 test images.
    """

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        return _write_tar(predictions, palette, tmp, inner, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_tar(predictions, palette: list[int], tmp: Path, inner: str, out: Path) -> int:
    from PIL import Image

    # The gzip header carries a time and a file name unless told otherwise: fixed here, so that the same
    # predictions give the same bytes (make verify compares outputs by hash).
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
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
