"""NYUD training inputs for Table 4's four modalities, from the prepare_nyud and hha outputs.

- rgb:    the RGB crop, normalised as the backbone's weights expect;
- rgbd:   RGB plus log(depth in mm) - 7.844 as a 4th channel (FCN's RGBD net, early fusion);
- hha:    the HHA image, normalised on the RGB net's scale with HHA's own per-channel means;
- rgbhha: RGB channels then HHA channels, for the late-fusion net (6 channels).
Items are (x float32 (C, H, W), label int64 (H, W), name), as segcore.data.voc.SegmentationDataset.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from segcore.data import nyud
from segcore.data.voc import DataError
from segcore.data.preprocess import Preprocess

MODALITIES = {"rgb": 3, "rgbd": 4, "hha": 3, "rgbhha": 6}  # modality -> input channels
LOG_DEPTH_MEAN = 7.844  # mean of log(depth in mm) over NYUD (FCN reference net)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        return np.array(Image.open(path))  # a writable copy: torch.from_numpy warns on read-only arrays
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from None


def hha_mean(hha_dir: Path | str, names: list[str]) -> tuple[float, float, float]:
    """Per-channel mean of the HHA images of ``names`` (FCN used NYUD's: 132.4, 94.1, 118.5)."""
    total, count = np.zeros(3), 0
    for name in names:
        image = _read_png(Path(hha_dir) / f"{name}.png").reshape(-1, 3)
        total += image.sum(0)
        count += image.shape[0]
    return tuple(round(float(v), 3) for v in total / count)


def hha_preprocess(rgb: Preprocess, mean: tuple[float, float, float]) -> Preprocess:
    """HHA on the RGB net's input scale: same scale and std, HHA's own means, channel order kept."""
    return replace(rgb, channel_order="RGB", mean=tuple(m * rgb.scale for m in mean))


class NyudDataset(torch.utils.data.Dataset):
    """Whole 425 x 560 crops (or the twin's) of one split in one modality."""

    def __init__(self, prepared: Path | str, hha_dir: Path | str, split: str, modality: str,
                 rgb: Preprocess, hha: Preprocess | None = None) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown NYUD modality {modality!r}; allowed: {', '.join(MODALITIES)}")
        if modality in ("hha", "rgbhha") and hha is None:
            raise ValueError(f"modality {modality!r} needs the HHA preprocessing")
        self.prepared, self.hha_dir = Path(prepared), Path(hha_dir)
        self.names = nyud.split_names(self.prepared, split)
        self.modality, self.rgb, self.hha = modality, rgb, hha

    @property
    def ids(self) -> list[str]:
        """The distinct images of the split (training records its size and overlap with validation)."""
        return list(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def _channels(self, name: str) -> list[torch.Tensor]:
        parts = []
        if self.modality in ("rgb", "rgbd", "rgbhha"):
            parts.append(self.rgb(_read_png(self.prepared / "images" / f"{name}.png")))
        if self.modality == "rgbd":
            depth_mm = 1000.0 * np.load(self.prepared / "depth" / f"{name}.npy")
            parts.append(torch.from_numpy(np.log(depth_mm) - LOG_DEPTH_MEAN).float()[None])
        if self.modality in ("hha", "rgbhha"):
            parts.append(self.hha(_read_png(self.hha_dir / f"{name}.png")))
        return parts

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        name = self.names[index]
        x = torch.cat(self._channels(name)).to(torch.float32)
        label = _read_png(self.prepared / "labels" / f"{name}.png")
        if x.shape[1:] != label.shape:
            raise DataError(f"{name}: input {tuple(x.shape[1:])} and label {label.shape} differ in size")
        return x, torch.from_numpy(label.astype(np.int64)), name
