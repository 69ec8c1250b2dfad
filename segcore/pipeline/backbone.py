"""The backbone stages: a pretrained classifier, its fc layers made convolutional, saved as a record."""

from __future__ import annotations

from pathlib import Path

from segcore.config.params import PretrainSmoke
from segcore.config.schema import build
from segcore.models import backbone as backbone_mod


def pretrain_spec(view: dict) -> PretrainSmoke:
    """The smoke pretraining recipe from a backbone's view, which holds only that architecture's steps."""
    return build(PretrainSmoke, view["pretrain"])


def make_backbone(view: dict, arch: str, out: Path, progress: bool = True, archives: Path | None = None) -> dict:
    """Pretrained ``arch`` classifier -> fc/conv surgery -> backbone record at ``out``; returns its summary.

    ``view``: segcore.pipeline.views.backbone: ImageNet weights (paper scale: torchvision's, or the
    paper's Caffe VGG16 / CaffeNet AlexNet taken from or downloaded into ``archives``), or the smoke
    scale's pretraining on twin objects.
    """
    backbone_mod.get_arch(arch)  # an unknown name fails before any download or training (so do weights
    # that do not fit the net: caffe() and imagenet() check them first)
    if view["scale"] == "paper" and view["weights"] == backbone_mod.CAFFE:
        record = backbone_mod.caffe(arch, archives, progress)
    elif view["scale"] == "paper":
        record = backbone_mod.imagenet(arch, view["weights"], progress)
    else:
        record = backbone_mod.pretrain_smoke(arch, view["width"], pretrain_spec(view), view["seed"], progress)
    backbone_mod.save_record(record, Path(out))
    return {k: v for k, v in record.items() if k != "trunk"}
