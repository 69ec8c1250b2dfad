"""The trained models of the paper's tables: architecture, initialisation, data, display name.

dvc.yaml's ``train`` and ``evaluate`` families iterate over these names; the stage scripts look
the rest up here, so one table holds what each experiment is.
"""

from __future__ import annotations

from dataclasses import dataclass

from segcore.config.schema import ConfigError
from segcore.models.registry import BACKBONE


@dataclass(frozen=True)
class Experiment:
    """One training run: ``arch`` from the model registry, started from ``init``."""

    name: str
    label: str            # as printed in the paper's tables
    arch: str             # key of segcore.models.registry.MODELS
    # "backbone", "scratch" (U-Net), the experiment whose trained weights seed this one, or one
    # experiment per stream of a fusion net (in segcore.models.fusion.STREAMS order)
    init: str | tuple[str, ...]
    stage: int            # 0, 1, 2: the learning rate is divided by 1/stage_lr_factor per stage
    train_split: str
    val_split: str
    test_splits: tuple[str, ...] = ()  # scored (or packed for the evaluation server) where present on disk
    only: tuple[str, ...] = ()  # layers to train; () = all
    schedule: str = "voc"       # its step count: a key of the recipe's `schedules` in params.yaml
    dataset: str = "voc"        # "voc" (VOC + SBD), "nyud" (NYU Depth v2) or "siftflow" (segcore.data.specs)
    modality: str = "rgb"       # NYUD input: rgb, rgbd, hha or rgbhha (segcore.data.nyud_dataset)
    border_weights: bool = True  # ISBI U-Net: the separation-border term of the weight map (else w_c only)

    def __post_init__(self) -> None:
        if not (isinstance(self.test_splits, tuple) and all(isinstance(s, str) for s in self.test_splits)):
            raise TypeError(f"{self.name}: test_splits must be a tuple of split names, got {self.test_splits!r}")

    @property
    def test_split(self) -> str | None:
        """The first test split: the one a table scores when it names a single split (NYUD, SIFT Flow)."""
        return self.test_splits[0] if self.test_splits else None

    @property
    def backbone(self) -> str | None:
        """The classifier architecture its trunk comes from (a key of segcore.models.backbone.ARCHS);
        None for a net trained from scratch (U-Net)."""
        return BACKBONE.get(self.arch)

    def iterations(self, recipe) -> int:
        """Training steps under ``recipe`` (TrainScale, or UnetScale for U-Net): its named schedule."""
        try:
            return recipe.schedules[self.schedule]
        except KeyError:
            raise ConfigError(f"schedules has no {self.schedule!r}, which {self.name} trains for; "
                              f"names: {', '.join(recipe.schedules)}") from None

    @property
    def parents(self) -> tuple[str, ...]:
        """The experiments whose trained weights seed this one (none from the backbone or from scratch)."""
        if self.init in ("backbone", "scratch"):
            return ()
        return self.init if isinstance(self.init, tuple) else (self.init,)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        # Table 2: trained on SBD train, validated on seg11valid.
        Experiment("fcn32s-fixed", "FCN-32s-fixed", "fcn32s", "backbone", 0, "sbd_train", "seg11valid",
                   only=("score_fr",)),
        Experiment("fcn32s", "FCN-32s", "fcn32s", "backbone", 0, "sbd_train", "seg11valid"),
        Experiment("fcn16s", "FCN-16s", "fcn16s", "fcn32s", 1, "sbd_train", "seg11valid", schedule="voc_skip"),
        Experiment("fcn8s", "FCN-8s", "fcn8s", "fcn16s", 2, "sbd_train", "seg11valid",
                   test_splits=("voc2012_test", "voc2011_test"), schedule="voc_skip"),
        # Table 1: each classifier made fully convolutional, trained on VOC2011 train only (no SBD)
        # at one fixed learning rate, validated on all of VOC2011 val.
        Experiment("t1-alexnet", "FCN-AlexNet", "fcn-alexnet", "backbone", 0, "voc2011_train", "voc2011_val",
                   schedule="voc2011"),
        Experiment("t1-vgg16", "FCN-VGG16", "fcn32s", "backbone", 0, "voc2011_train", "voc2011_val", schedule="voc2011"),
        Experiment("t1-googlenet", "FCN-GoogLeNet", "fcn-googlenet", "backbone", 0, "voc2011_train",
                   "voc2011_val", schedule="voc2011"),
        # Table 4: NYUDv2, 40 classes; trained on the train part of the 795, validated on the rest,
        # scored on the 654 test frames. RGB-HHA fuses the two trained single-modality nets.
        *(Experiment(f"nyud-{m}", f"FCN-32s {m.upper()}", "fcn32s", "backbone", 0, "train", "val", ("test",),
                     schedule="nyud", dataset="nyud", modality=m) for m in ("rgb", "rgbd", "hha")),
        Experiment("nyud-rgbhha", "FCN-32s RGB-HHA", "fcn32s-rgbhha", ("nyud-rgb", "nyud-hha"), 0, "train", "val",
                   ("test",), schedule="nyud_fusion", dataset="nyud", modality="rgbhha"),
        Experiment("nyud-rgbhha16s", "FCN-16s RGB-HHA", "fcn16s-rgbhha", "nyud-rgbhha", 1, "train", "val", ("test",),
                   schedule="nyud_fusion", dataset="nyud", modality="rgbhha"),
        # Table 5: SIFT Flow, one net with a semantic (33) and a geometric (3) head, the two losses summed;
        # staged 32s -> 16s as on VOC, trained on the annotated training images minus a held-out val part.
        Experiment("sift-fcn32s", "FCN-32s", "fcn32s", "backbone", 0, "train", "val", ("test",), schedule="siftflow",
                   dataset="siftflow"),
        Experiment("sift-fcn16s", "FCN-16s", "fcn16s", "sift-fcn32s", 1, "train", "val", ("test",),
                   schedule="siftflow_skip", dataset="siftflow"),
        # U-Net (Ronneberger et al.), from scratch. ISBI 2012: trained on the training slices minus the
        # held-out ones (the test labels are secret), with and without the separation-border weights.
        Experiment("unet-isbi", "u-net", "unet", "scratch", 0, "train", "heldout", schedule="isbi", dataset="isbi"),
        Experiment("unet-isbi-noborder", "u-net without border weights", "unet", "scratch", 0, "train", "heldout",
                   schedule="isbi", dataset="isbi", border_weights=False),
        # Beyond the paper: U-Net on Table 2's data, so the two architectures can be compared.
        Experiment("unet-voc", "U-Net", "unet", "scratch", 0, "sbd_train", "seg11valid",
                   test_splits=("voc2012_test",)),
        # Option, not in the default DAG: the reference code's FCN-8s stage, whose solver keeps the
        # 16s learning rate (1e-12), hence stage 1 here. Add it to dvc.yaml's train_siftflow to run it.
        Experiment("sift-fcn8s", "FCN-8s", "fcn8s", "sift-fcn16s", 1, "train", "val", ("test",),
                   schedule="siftflow_skip", dataset="siftflow"),
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
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}") from None
