"""ISBI 2012 evaluation of a U-Net: overlap-tile cell probabilities, the challenge's scores on the
held-out slices, predictions for the secret test stack, and the data of the report's figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from segcore.data import isbi
from segcore.data.isbi_dataset import normalise
from segcore.data.weightmap import weight_map
from segcore.eval.isbi_scores import score_stack
from segcore.eval.metrics import confusion, scores
from segcore.eval.tiling import predict_tiled


def cell_probabilities(model: torch.nn.Module, slices: np.ndarray, pre, tile: int,
                       device: str = "cpu") -> np.ndarray:
    """(S, H, W) float32 cell probability of grey slices by overlap-tile inference (segcore.eval.tiling)."""
    model.eval().to(device)
    out = []
    with torch.inference_mode():
        for image in slices:
            x = normalise(image.astype(np.float64) / 255, pre).to(device)
            logits = predict_tiled(model, x, tile)  # (2, H, W)
            out.append(torch.softmax(logits.float(), 0)[1].cpu().numpy())
    return np.stack(out)


def evaluate_isbi(model: torch.nn.Module, pre, data_root: Path, tile: int, eval_dir: Path,
                  device: str = "cpu") -> dict:
    """Held-out scores (the challenge's three errors and the confusion metrics), test predictions, figure data."""
    volume, labels, held = isbi.read_prepared(data_root, "heldout")
    probs = cell_probabilities(model, volume[held], pre, tile, device)
    gts = labels[held]
    errors = score_stack(probs, gts)
    hist = confusion(torch.from_numpy((gts == isbi.CELL).astype(np.int64)),
                     torch.from_numpy((probs > 0.5).astype(np.int64)), 2)
    result = {**{k: round(100 * v, 4) for k, v in scores(hist).items()},
              **{k: float(v) for k, v in errors.items()}, "slices": len(held),
              "heldout_slices": ",".join(str(i) for i in held)}
    eval_dir = Path(eval_dir)
    w = weight_map((gts[0] == isbi.CELL).astype(np.uint8)).weight  # the paper's w0 = 10, sigma = 5 px
    np.savez_compressed(eval_dir / "figure.npz", image=volume[held[0]], label=gts[0], weight=w, prob=probs[0])
    test = Path(data_root) / "test.npy"
    if test.exists():  # the challenge's test stack: its labels are secret, so only predictions
        test_probs = cell_probabilities(model, np.load(test), pre, tile, device)
        isbi.write_tiff_stack(eval_dir / "test-probabilities.tif", np.round(test_probs * 255).astype(np.uint8))
    return result
