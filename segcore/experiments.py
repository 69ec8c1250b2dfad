"""The trained models of the paper's tables: architecture, initialisation, data, display name.

dvc.yaml's ``train`` and ``evaluate`` families iterate over these names; the stage scripts look
the rest up here, so one table holds what each experiment is.
"""

from __future__ import annotations

from dataclasses import dataclass

from segcore.models.registry import BACKBONE


@dataclass(frozen=True)
class Experiment:
    """One training run: ``arch`` from the model registry, started from ``init``."""

    name: str
    label: str            # as printed in the paper's tables
    arch: str             # key of segcore.models.registry.MODELS
    init: str             # "backbone" or the experiment whose trained weights seed this one
    stage: int            # 0, 1, 2: the learning rate is divided by 1/stage_lr_factor per stage
    train_split: str
    val_split: str
    test_split: str | None = None
    only: tuple[str, ...] = ()  # layers to train; () = all
    table: int = 2              # the paper table it belongs to; Table 1 nets train table1_iterations

    @property
    def backbone(self) -> str:
        """The classifier architecture its trunk comes from (a key of segcore.backbone.ARCHS)."""
        return BACKBONE[self.arch]

    def iterations(self, recipe) -> int:
        """Training steps under ``recipe`` (a segcore.params.TrainScale)."""
        if self.table == 1:
            return recipe.table1_iterations
        return recipe.iterations if self.stage == 0 else recipe.skip_iterations


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        # Table 2: trained on SBD train, validated on seg11valid.
        Experiment("fcn32s-fixed", "FCN-32s-fixed", "fcn32s", "backbone", 0, "sbd_train", "seg11valid",
                   only=("score_fr",)),
        Experiment("fcn32s", "FCN-32s", "fcn32s", "backbone", 0, "sbd_train", "seg11valid"),
        Experiment("fcn16s", "FCN-16s", "fcn16s", "fcn32s", 1, "sbd_train", "seg11valid"),
        Experiment("fcn8s", "FCN-8s", "fcn8s", "fcn16s", 2, "sbd_train", "seg11valid",
                   test_split="voc2012_test"),
        # Table 1: each classifier made fully convolutional, trained on VOC2011 train only (no SBD)
        # at one fixed learning rate, validated on all of VOC2011 val.
        Experiment("t1-alexnet", "FCN-AlexNet", "fcn-alexnet", "backbone", 0, "voc2011_train", "voc2011_val",
                   table=1),
        Experiment("t1-vgg16", "FCN-VGG16", "fcn32s", "backbone", 0, "voc2011_train", "voc2011_val", table=1),
        Experiment("t1-googlenet", "FCN-GoogLeNet", "fcn-googlenet", "backbone", 0, "voc2011_train",
                   "voc2011_val", table=1),
        # Option, not in the default DAG: the reference code's one-stage FCN-8s (pool4 x 0.01 and
        # pool3 x 0.0001 fixed), trained straight from the backbone. Add it to dvc.yaml's train and
        # evaluate families to run it.
        Experiment("fcn8s-atonce", "FCN-8s at-once", "fcn8s-atonce", "backbone", 0, "sbd_train",
                   "seg11valid"),
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; the error lists the known ones."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}") from None
