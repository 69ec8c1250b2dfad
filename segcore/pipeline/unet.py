"""U-Net stages on ISBI 2012: data (twin, TIFFs placed by hand, or the checksummed HDF5 mirror),
preparation with a held-out split, and the challenge's scores on the held-out slices.

Kept apart from segcore.pipeline.stages so that the VOC stages do not rerun when only the U-Net side
changes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from segcore.core import atomic
from segcore.data import isbi
from segcore.config.params import Params

SPLITS = ("train", "heldout")


def download_isbi(params: Params, out: Path, archives: Path, progress: bool = True,
                  catalog: dict | None = None) -> None:
    """ISBI 2012 under ``out``: the twin's three TIFFs, or the real data.

    Real data: the three TIFFs placed by hand in ``archives`` (the official site needs a
    registration) are linked into ``out``; otherwise the HDF5 mirror is downloaded and its
    published sha256 checked.
    """
    out = Path(out)
    if params.data_source == "twin":
        from segcore.data.twin_isbi import write_isbi_twin

        write_isbi_twin(out, **asdict(params.twin.isbi))
        return
    archives = Path(archives)
    placed = [archives / name for name in (isbi.TRAIN_VOLUME, isbi.TRAIN_LABELS, isbi.TEST_VOLUME)]
    if placed[0].exists() and placed[1].exists():
        atomic.build_dir(out, lambda tmp: [atomic.link_or_copy(p, tmp / p.name) for p in placed if p.exists()])
        return
    from segcore.data.download import CATALOG, ensure_file

    ensure_file((catalog or CATALOG)["isbi_mirror"], archives, out, progress=progress)


def prepare_isbi(params: Params, src: Path, out: Path) -> dict[str, int]:
    """volume.npy, labels.npy (255 cell / 0 membrane), test.npy if present, and the slice lists.

    The last ``isbi.eval_fraction`` of the training slices (at least one) are held out.
    """
    data = isbi.load_isbi(Path(src))
    n = len(data.train_volume)
    n_eval = max(1, int(round(n * params.isbi.eval_fraction)))
    train, heldout = isbi.holdout_split(n, min(n_eval, n - 1))

    def build(tmp: Path) -> dict[str, int]:
        (tmp / "splits").mkdir(parents=True)
        np.save(tmp / "volume.npy", data.train_volume)
        np.save(tmp / "labels.npy", data.train_labels)
        if data.test_volume is not None:
            np.save(tmp / "test.npy", data.test_volume)
        for name, idx in zip(SPLITS, (train, heldout)):
            (tmp / "splits" / f"{name}.txt").write_text("".join(f"{i}\n" for i in idx))
        (tmp / "source.txt").write_text(data.source + "\n")
        return {"train": len(train), "heldout": len(heldout), "test": 0 if data.test_volume is None
                else len(data.test_volume)}

    return atomic.build_dir(out, build)


def read_prepared(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(volume, labels, slice indices of ``split``) of a prepared folder."""
    if split not in SPLITS:
        raise ValueError(f"unknown ISBI split {split!r}; allowed: {', '.join(SPLITS)}")
    root = Path(root)
    try:
        volume, labels = np.load(root / "volume.npy"), np.load(root / "labels.npy")
        indices = [int(v) for v in (root / "splits" / f"{split}.txt").read_text().split()]
    except (OSError, ValueError) as err:
        raise ValueError(f"{root} is not a prepared ISBI folder (run prepare_isbi): {err}") from None
    return volume, labels, indices


def cell_probabilities(model: torch.nn.Module, slices: np.ndarray, pre, tile: int,
                       device: str = "cpu") -> np.ndarray:
    """(S, H, W) float32 cell probability of grey slices by overlap-tile inference (segcore.eval.tiling)."""
    from segcore.data.isbi_dataset import normalise
    from segcore.eval.tiling import predict_tiled

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
    from segcore.eval.isbi_scores import score_stack
    from segcore.eval.metrics import confusion, scores
    from segcore.data.weightmap import weight_map

    volume, labels, held = read_prepared(data_root, "heldout")
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
