"""Which data set an experiment reads and how its inputs are built: VOC (+ SBD), NYUD or SIFT Flow.

One place maps an experiment (segcore.train.experiments) to its class count (or heads), class names,
input channels and the torch Dataset of a split, so training and evaluation never branch on the
data set themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segcore.data import nyud, siftflow, voc
from segcore.data.nyud_dataset import MODALITIES, NyudDataset, hha_mean, hha_preprocess
from segcore.data.preprocess import Preprocess

# The class names of every head of a data set's net, in output order (segcore.models.heads).
HEADS: dict[str, dict[str, tuple[str, ...]]] = {
    "voc": {"": tuple(voc.CLASSES)},
    "nyud": {"": nyud.CLASSES},
    "siftflow": {"sem": siftflow.CLASSES, "geo": siftflow.GEO_CLASSES},
    "isbi": {"": ("membrane", "cell")},
}
CLASS_NAMES: dict[str, tuple[str, ...]] = {name: next(iter(h.values())) for name, h in HEADS.items()}
# SIFT Flow's means skip classes absent from the test ground truth (FCN paper Table 5).
EXCLUDE_ABSENT = frozenset({"siftflow"})


@dataclass(frozen=True)
class Inputs:
    """The preprocessing a net's inputs went through: RGB (from its backbone) and, if used, HHA."""

    rgb: Preprocess
    hha: Preprocess | None = None

    def to_dict(self) -> dict:
        return {"preprocess": self.rgb.to_dict(), "hha_preprocess": self.hha.to_dict() if self.hha else None}

    @classmethod
    def from_record(cls, record: dict) -> Inputs:
        hha = record.get("hha_preprocess")
        return cls(Preprocess.from_dict(record["preprocess"]), Preprocess.from_dict(hha) if hha else None)


def n_classes(exp) -> int | dict[str, int]:
    """The class count, or {head: class count} for a multi-head net (SIFT Flow: {"sem": 33, "geo": 3})."""
    heads = HEADS[exp.dataset]
    if list(heads) == [""]:
        return len(heads[""])
    return {name: len(classes) for name, classes in heads.items()}


def in_channels(exp) -> int:
    """3 for RGB; NYUD's RGBD net takes 4 and the RGB-HHA fusion 6; ISBI's grey EM slices 1."""
    if exp.dataset == "isbi":
        return 1
    return MODALITIES[exp.modality] if exp.dataset == "nyud" else 3


def scratch_preprocess(exp) -> Preprocess:
    """Input normalisation of a net trained from scratch (no backbone record to take it from)."""
    from segcore.data.isbi_dataset import GREY
    from segcore.data.preprocess import TORCHVISION_IMAGENET

    return GREY if exp.dataset == "isbi" else TORCHVISION_IMAGENET


def make_inputs(exp, rgb: Preprocess, data_root: Path, hha_root: Path | None) -> Inputs:
    """The experiment's preprocessing; HHA is centred by the mean of its own training frames."""
    if exp.dataset != "nyud" or exp.modality not in ("hha", "rgbhha"):
        return Inputs(rgb)
    if hha_root is None:
        raise ValueError(f"{exp.name} reads HHA images: pass the hha stage's output (--hha)")
    return Inputs(rgb, hha_preprocess(rgb, hha_mean(hha_root, nyud.split_names(data_root, exp.train_split))))


def split_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    """Dataset of (x, label, id) for ``split`` of the experiment's data set."""
    if exp.dataset == "voc":
        return voc.SegmentationDataset(voc.split_samples(Path(data_root), split), transform=inputs.rgb)
    if exp.dataset == "siftflow":
        return siftflow.SiftFlowDataset(data_root, split, inputs.rgb)
    if exp.dataset == "isbi":
        from segcore.data.isbi_dataset import IsbiDataset
        from segcore.pipeline.unet import read_prepared

        volume, labels, indices = read_prepared(Path(data_root), split)
        return IsbiDataset(volume, labels, indices, inputs.rgb, train=split == exp.train_split,
                           border_weights=exp.border_weights)
    return NyudDataset(data_root, hha_root or Path(data_root), split, exp.modality, inputs.rgb, inputs.hha)
