"""One DataSpec per data set: VOC (+ SBD), NYUD, SIFT Flow and ISBI 2012, in the registry DATASETS.

A spec holds what the stages and the reports need to know about a data set: how to download (or
write the twin of) and prepare it (segcore.data.fetch), its heads and class names, whether its
means skip classes absent from the ground truth, its input channels, the preprocessing of a net
trained from scratch, how to build its inputs and the torch Dataset of a split, and how a report
header describes it. The module functions below take an experiment
(segcore.train.experiments.Experiment, duck-typed: dataset, modality, border_weights, train_split,
name) and are one lookup into DATASETS, so no caller branches on a data set's name.

Adding a data set: its reader and twin modules here in segcore/data/, and one DATASETS entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from segcore.config.schema import ConfigError
from segcore.data import fetch, isbi, nyud, siftflow, voc
from segcore.data.isbi_dataset import GREY, IsbiDataset
from segcore.data.nyud_dataset import MODALITIES, NyudDataset, hha_mean, hha_preprocess
from segcore.data.preprocess import TORCHVISION_IMAGENET, Preprocess


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


def rgb_inputs(exp, rgb: Preprocess, data_root: Path, hha_root: Path | None) -> Inputs:
    """Inputs of a data set read as images only: the backbone's (or scratch) preprocessing."""
    return Inputs(rgb)


@dataclass(frozen=True)
class DataSpec:
    """What the pipeline and the reports know about one data set (an entry of DATASETS)."""

    name: str   # its key in DATASETS and in params.yaml's `twin`; its twin is segcore.data.twin_<name>
    title: str  # short name, as in "synthetic <title> twin"
    real: str   # report header's description of the real data
    twin: str   # str.format template over the twin's params: its size, after the seed (may be "")
    heads: Mapping[str, tuple[str, ...]]  # class names per output head, in output order; "" = the only head
    # (exp, split, data_root, hha_root, inputs) -> Dataset of (x float32 (C, H, W), label int64 (H, W), id)
    dataset: Callable[..., Any]
    # (twin sizes as a dict, or None for the real data; out, archives, progress, **test hooks) -> None
    download: Callable[..., None]
    # (src, out, **the prepare stage's view) -> split sizes; None: read as downloaded (VOC)
    prepare: Callable[..., dict[str, int]] | None = None
    channels: int | Mapping[str, int] = 3  # input channels, or per modality (NYUD)
    scratch: Preprocess = TORCHVISION_IMAGENET  # input normalisation of a net trained from scratch
    inputs: Callable[..., Inputs] = rgb_inputs  # (exp, rgb, data_root, hha_root) -> Inputs
    exclude_absent: bool = False  # means skip classes absent from the test ground truth
    scored: str = "{images} {split} images"  # str.format template over a split's metrics (and split)
    # How a net is scored: "confusion" (the FCN paper's four metrics from one confusion matrix per
    # head) or "isbi" (the challenge's three errors on held-out slices, segcore.eval.isbi).
    scoring: str = "confusion"
    # {test split: folder inside the evaluation-server archive}: where such a split's labels are
    # withheld (real VOC), its predictions are packed for the server instead of scored
    server_test: Mapping[str, str] = field(default_factory=dict)

    def describe(self, source: str, twin=None) -> str:
        """The report header's data description: the real data set, or its twin, whose sizes ``twin``
        are the params.yaml section ``twin.<name>`` (a dataclass or a dict)."""
        if source == "real":
            return self.real
        if source != "twin" or twin is None:
            raise ValueError(f"{self.name}: the data source must be 'real' or 'twin' with the twin's sizes, "
                             f"got {source!r} (twin sizes {twin!r})")
        sizes = dict(twin) if isinstance(twin, Mapping) else asdict(twin)
        size = self.twin.format(**sizes)
        return f"synthetic {self.title} twin (segcore.data.twin_{self.name}, seed {sizes['seed']}{size})"

    def in_channels(self, modality: str) -> int:
        """Input channels of a net reading this data set in ``modality`` (only NYUD has several)."""
        return self.channels if isinstance(self.channels, int) else self.channels[modality]


def _voc_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    return voc.SegmentationDataset(voc.split_samples(Path(data_root), split), transform=inputs.rgb)


def _nyud_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    return NyudDataset(data_root, hha_root or Path(data_root), split, exp.modality, inputs.rgb, inputs.hha)


def _nyud_inputs(exp, rgb: Preprocess, data_root: Path, hha_root: Path | None) -> Inputs:
    """HHA is centred by the mean of its own training frames, on the RGB net's scale."""
    if exp.modality not in ("hha", "rgbhha"):
        return Inputs(rgb)
    if hha_root is None:
        raise ConfigError(f"{exp.name} reads HHA images: pass the hha stage's output (--hha)")
    return Inputs(rgb, hha_preprocess(rgb, hha_mean(hha_root, nyud.split_names(data_root, exp.train_split))))


def _siftflow_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    return siftflow.SiftFlowDataset(data_root, split, inputs.rgb)


def _isbi_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    volume, labels, indices = isbi.read_prepared(Path(data_root), split)
    return IsbiDataset(volume, labels, indices, inputs.rgb, train=split == exp.train_split,
                       border_weights=exp.border_weights)


DATASETS: dict[str, DataSpec] = {
    s.name: s
    for s in (
        DataSpec("voc", "VOC + SBD", "PASCAL VOC2011/2012 + SBD, md5-verified downloads", "",
                 {"": tuple(voc.CLASSES)}, _voc_dataset, fetch.download_voc,
                 server_test={split: voc.submission_folder(year) for split, year in voc.TEST_YEARS.items()}),
        DataSpec("nyud", "NYUD", "NYU Depth v2 labeled (795 / 654 split, 40 classes)",
                 ", {n_train} + {n_test} rooms at x{scale:g} of 480 x 640",
                 {"": nyud.CLASSES}, _nyud_dataset, fetch.download_nyud, fetch.prepare_nyud,
                 channels=MODALITIES, inputs=_nyud_inputs),
        # SIFT Flow's means skip classes absent from the test ground truth (FCN paper Table 5).
        DataSpec("siftflow", "SIFT Flow", "SIFT Flow (2,488 / 200 split, 2 unannotated training images dropped)",
                 ", {n_train} training images ({n_unannotated} unannotated) + {n_test} test, {size} x {size}",
                 {"sem": siftflow.CLASSES, "geo": siftflow.GEO_CLASSES}, _siftflow_dataset,
                 fetch.download_siftflow, fetch.prepare_siftflow, exclude_absent=True),
        # Grey EM slices, one channel; scored on held-out training slices (no test labels exist).
        DataSpec("isbi", "ISBI 2012", "ISBI 2012 training stack (30 slices)", ", {n_slices} slices of {size} x {size}",
                 {"": ("membrane", "cell")}, _isbi_dataset, fetch.download_isbi, fetch.prepare_isbi,
                 channels=1, scratch=GREY, scored="{slices} held-out slices", scoring="isbi"),
    )
}

# Views kept for callers that index by data set name.
HEADS: dict[str, dict[str, tuple[str, ...]]] = {name: dict(s.heads) for name, s in DATASETS.items()}
CLASS_NAMES: dict[str, tuple[str, ...]] = {name: next(iter(h.values())) for name, h in HEADS.items()}
EXCLUDE_ABSENT = frozenset(name for name, s in DATASETS.items() if s.exclude_absent)


def spec(exp) -> DataSpec:
    """The DataSpec of experiment ``exp``'s data set; the error names the known ones."""
    try:
        return DATASETS[exp.dataset]
    except KeyError:
        raise ValueError(f"{exp.name}: unknown data set {exp.dataset!r}; known: {', '.join(DATASETS)}") from None


def n_classes(exp) -> int | dict[str, int]:
    """The class count, or {head: class count} for a multi-head net (SIFT Flow: {"sem": 33, "geo": 3})."""
    heads = spec(exp).heads
    if list(heads) == [""]:
        return len(heads[""])
    return {name: len(classes) for name, classes in heads.items()}


def in_channels(exp) -> int:
    """3 for RGB; NYUD's RGBD net takes 4 and the RGB-HHA fusion 6; ISBI's grey EM slices 1."""
    return spec(exp).in_channels(exp.modality)


def scratch_preprocess(exp) -> Preprocess:
    """Input normalisation of a net trained from scratch (no backbone record to take it from)."""
    return spec(exp).scratch


def make_inputs(exp, rgb: Preprocess, data_root: Path, hha_root: Path | None) -> Inputs:
    """The experiment's preprocessing; HHA is centred by the mean of its own training frames."""
    return spec(exp).inputs(exp, rgb, data_root, hha_root)


def split_dataset(exp, split: str, data_root: Path, hha_root: Path | None, inputs: Inputs):
    """Dataset of (x, label, id) for ``split`` of the experiment's data set."""
    return spec(exp).dataset(exp, split, data_root, hha_root, inputs)
