"""The released-net stages: the FCN authors' own trained nets, converted into model files and scored here.

Each of segcore.models.released.RELEASED has a stage (dvc.yaml ``released_<data set>@<net>``). A net the
params do not select (``released.nets.<data source>``) writes a short "not selected" record and its stage
ends at once, so the default smoke run stays offline and as fast. A selected net's file is taken from the
download folder (placed by hand) or its published address, its size checked against the layout before it is
read, its sha256 pinned on first use (no checksums are published), converted strictly
(segcore.models.released.write_model_file), and scored by the evaluation of our trained nets
(segcore.pipeline.evaluate) on the split its reference scores, so the two numbers are comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from segcore.core import atomic
from segcore.data.download import RECORDED_CHECKSUMS, DownloadError, fetch, verify_or_record
from segcore.models.registry import build_model
from segcore.models.released import ReleasedNet, released_net, write_model_file
from segcore.models.upsampling import FixedBilinearUpsampling
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.pipeline.released_status import STATUS, not_selected
from segcore.train.experiments import Experiment

# Bytes a caffemodel carries beyond its float32 weights: layer names, types and parameters, blob shapes.
# A few kilobytes in the reference files; a file much longer than its weights is not the released net.
LAYOUT_SLACK = 1 << 20


def experiment(net: ReleasedNet) -> Experiment:
    """The released net as the evaluation sees an experiment: its architecture, data set, modality and the
    split its reference scores (no training split: it was trained by its authors)."""
    return Experiment(f"released-{net.name}", f"{net.name} (released)", net.arch, "released", 0, "",
                      net.split, dataset=net.dataset, modality=net.modality)


def weight_bytes(net: ReleasedNet, width: float) -> int:
    """Bytes of the file's float32 weights: the directly built net's parameters, each fixed upsampling stored
    dense (C x C x k x k) as Caffe holds every Deconvolution, plus the at-once Scale blobs."""
    with torch.device("meta"):  # shapes only: a full-size net would initialise 134M weights to count them
        model = build_model(net.arch, n_classes=net.n_classes, width=width, in_channels=net.in_channels)
    floats = 0
    for name, module in model.named_modules():
        if name == "hha.upscore" and net.modality == "rgbhha":
            continue  # color-hha: one upscore in the file, shared by our two streams' copies
        if isinstance(module, FixedBilinearUpsampling):
            floats += module.in_channels * module.weight.numel()  # (C, 1, k, k) here, (C, C, k, k) there
        else:
            floats += sum(p.numel() for p in module.parameters(recurse=False))
    if net.arch == "fcn8s-atonce":  # Scale blobs: one factor per pool4 / pool3 channel
        floats += model.score_pool4.in_channels + model.score_pool3.in_channels
    return 4 * floats


def check_size(path: Path, net: ReleasedNet, width: float) -> None:
    """Refuse, before reading it, a file whose size cannot hold the net's weights (truncated) or is far
    longer (another file): the authors publish no size, but the layout fixes it to within a few kilobytes."""
    size, need = path.stat().st_size, weight_bytes(net, width)
    if not need <= size <= need + LAYOUT_SLACK:
        raise DownloadError(f"{path} has {size:,} bytes; {net.name} at width {width:g} needs {need:,} bytes of "
                            f"weights plus at most {LAYOUT_SLACK:,} of layout: truncated or another file? "
                            f"Delete it and rerun, or place the right file ({net.url})")


def locate(net: ReleasedNet, archives: Path, width: float, progress: bool = True,
           record_file: Path = RECORDED_CHECKSUMS) -> tuple[Path, str]:
    """(path, sha256) of the net's caffemodel: placed in ``archives`` by hand, else downloaded there; its size
    checked against the layout, then its size + sha256 pinned in ``record_file`` on first use, enforced after."""
    path = fetch(net.url, Path(archives) / net.file, md5=None, progress=progress)
    check_size(path, net, width)
    return path, str(verify_or_record(path, record_file, progress)["sha256"])


def run_released(view: dict, archives: Path, data_root: Path, model_dir: Path, metrics_out: Path, eval_dir: Path,
                 *, device: str = "cpu", hha_root: Path | None = None, progress: bool = True) -> dict | None:
    """Convert and score one released net (its view: segcore.pipeline.views.released); None when not selected.

    Every check (the name, the file's size and pinned checksum, the strict conversion) runs before an
    output is touched: the converted model file is written under a temp name and the folder renamed whole.
    """
    net = released_net(view["net"])
    if not view["selected"]:
        not_selected(view, model_dir, metrics_out, eval_dir)
        return None
    path, sha256 = locate(net, archives, view["width"], progress)
    model_file = Path(model_dir) / "model.pt"

    def convert(tmp: Path) -> None:
        record = write_model_file(path, net.name, tmp / "model.pt", width=view["width"], sha256=sha256)
        atomic.write_json(tmp / STATUS, {"net": net.name, "selected": True, "file": net.file, "sha256": sha256,
                                         "url": net.url, "width": view["width"], "arch": record["arch"]})

    atomic.build_dir(Path(model_dir), convert)
    return evaluate_experiment(view, data_root, model_file, metrics_out, eval_dir, device=device,
                               hha_root=hha_root, progress=progress, exp=experiment(net))


def reference_gap(ours: float | None, net: ReleasedNet) -> float | None:
    """Ours minus the published score, in mean IU points; None where either is missing."""
    if ours is None or net.reference is None or (isinstance(ours, float) and math.isnan(ours)):
        return None
    return ours - net.reference
