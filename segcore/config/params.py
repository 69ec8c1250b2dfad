"""The params.yaml schema as frozen dataclasses, and the profile logic built on it.

``profile`` picks two things, each overridable on its own: the data source (``data``: the
synthetic twin or the real download) and the scale (``scale``: scaled-down nets and short
schedules, or the full nets and the published recipe). Every section that differs between the
scales holds both variants side by side, so params.yaml shows every hyper-parameter of both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from segcore.config.schema import ConfigError, build, field, load_yaml

Profile = Literal["smoke", "paper"]


@dataclass(frozen=True)
class VocTwin:
    """Size of the synthetic VOC + SBD twin (see segcore.data.twin_voc)."""

    seed: int = field(ge=0)
    n_sbd_train: int = field(ge=2)
    n_voc_train: int = field(ge=2)
    n_voc_val: int = field(ge=2)
    n_test: int = field(ge=1)
    min_size: int = field(ge=16, le=1024)
    max_size: int = field(ge=16, le=1024)


@dataclass(frozen=True)
class NyudTwin:
    """Size of the synthetic NYU Depth v2 twin (see segcore.data.twin_nyud)."""

    seed: int = field(ge=0)
    n_train: int = field(ge=2, doc="frames in trainNdxs (real: 795)")
    n_test: int = field(ge=1, doc="frames in testNdxs (real: 654)")
    scale: float = field(ge=0.07, le=1.0, doc="frame size relative to the real 480 x 640")


@dataclass(frozen=True)
class SiftflowTwin:
    """Size of the synthetic SIFT Flow twin (see segcore.data.twin_siftflow)."""

    seed: int = field(ge=0)
    n_train: int = field(ge=8, doc="training images, unannotated ones included (real: 2,488)")
    n_test: int = field(ge=8, doc="images in TestSet1.txt (real: 200)")
    n_unannotated: int = field(ge=0, doc="training images without any label (real: 2)")
    size: int = field(ge=32, le=256, doc="image side in pixels (real: 256)")


@dataclass(frozen=True)
class IsbiTwin:
    """Size of the synthetic ISBI 2012 twin (see segcore.data.twin_isbi)."""

    seed: int = field(ge=0)
    n_slices: int = field(ge=2, le=100, doc="slices per stack (real: 30)")
    size: int = field(ge=64, le=1024, doc="slice side in pixels (real: 512)")


@dataclass(frozen=True)
class Twin:
    voc: VocTwin
    nyud: NyudTwin
    siftflow: SiftflowTwin
    isbi: IsbiTwin


@dataclass(frozen=True)
class HoldOut:
    """Per scale: are the validation-curve images left out of training (True) or a subset of it (False)?"""

    smoke: bool
    paper: bool


@dataclass(frozen=True)
class Nyud:
    """NYUD preparation: which of the 795 training frames draw the validation curves."""

    val_fraction: float = field(gt=0.0, lt=1.0, doc="share of the training frames in the validation split")
    hold_out: HoldOut


@dataclass(frozen=True)
class Siftflow:
    """SIFT Flow preparation: which training images draw the validation curves."""

    val_fraction: float = field(gt=0.0, lt=1.0, doc="share of the training images in the validation split")
    hold_out: HoldOut


@dataclass(frozen=True)
class Isbi:
    """ISBI 2012 preparation: test labels are secret, so the last training slices are held out."""

    eval_fraction: float = field(gt=0.0, lt=1.0, doc="share of the training slices held out (at least one)")


@dataclass(frozen=True)
class UnetScale:
    """One scale's U-Net recipe (Ronneberger et al. Sec. 3: SGD, momentum 0.99, one tile per step)."""

    width: float = field(gt=0.0, le=1.0, doc="channel multiplier (1.0 = the paper's 64 ... 1024)")
    optimizer: Literal["sgd", "adam"]
    lr: float = field(gt=0.0, lt=1.0)
    momentum: float = field(ge=0.0, lt=1.0)
    weight_decay: float = field(ge=0.0)
    batch_size: int = field(ge=1)
    schedules: dict[str, int] = field(ge=1, doc="training steps per named schedule (segcore.train.experiments)")
    val_every: int = field(ge=1)
    checkpoint_every: int = field(ge=1)
    eval_tile: int = field(ge=20, doc="output tile of overlap-tile inference (16k + 4)")


@dataclass(frozen=True)
class Unet:
    smoke: UnetScale
    paper: UnetScale


@dataclass(frozen=True)
class NetScale:
    width: float = field(gt=0.0, le=1.0, doc="channel multiplier of VGG16 (1.0 = the paper's net)")


@dataclass(frozen=True)
class Net:
    learn_upsampling: bool
    smoke: NetScale
    paper: NetScale


@dataclass(frozen=True)
class PretrainSmoke:
    """Synthetic classification pretraining: the smoke profile's stand-in for ImageNet."""

    optimizer: Literal["sgd", "adam"]
    iterations: dict[str, int] = field(ge=1, doc="steps per backbone architecture (segcore.models.backbone.ARCHS)")
    batch_size: int = field(ge=1)
    lr: float = field(gt=0.0)
    momentum: float = field(ge=0.0, lt=1.0, doc="SGD only")
    weight_decay: float = field(ge=0.0)
    image_size: int = field(ge=32, le=512)


@dataclass(frozen=True)
class PretrainPaper:
    """Which ImageNet weights the paper scale starts from (segcore.models.backbone)."""

    weights: dict[str, Literal["IMAGENET1K_V1", "caffe"]] = field(
        doc="per backbone architecture: torchvision's, or caffe: the paper's own Caffe net (vgg16; alexnet, "
            "which has only these: segcore.models.backbone.paper_weights)")


@dataclass(frozen=True)
class Backbone:
    smoke: PretrainSmoke
    paper: PretrainPaper


@dataclass(frozen=True)
class TrainScale:
    """One scale's training recipe (paper Sec. 4.3 and the reference solvers)."""

    optimizer: Literal["sgd", "adam"]
    lr_multiplier: float = field(gt=0.0)
    stage_lr_factor: float = field(gt=0.0, le=1.0)
    momentum: float = field(ge=0.0, lt=1.0)
    weight_decay: float = field(ge=0.0)
    bias_lr_mult: float = field(ge=0.0)
    batch_size: int = field(ge=1)
    images_per_forward: int = field(ge=1, doc="same-size images of a batch sharing one forward pass")
    schedules: dict[str, int] = field(ge=1, doc="training steps per named schedule (segcore.train.experiments)")
    # Learning rate of each backbone's FCN relative to ``lr`` (paper Sec. 4.3: 1e-3, 1e-4, 5e-5)
    net_lr_scale: dict[str, float] = field(gt=0.0, doc="per backbone architecture (segcore.models.backbone.ARCHS)")
    normalise_loss: bool
    val_every: int = field(ge=1)
    checkpoint_every: int = field(ge=1)


@dataclass(frozen=True)
class Train:
    smoke: TrainScale
    paper: TrainScale


@dataclass(frozen=True)
class Evaluate:
    figure_images: int = field(ge=1, le=16)


@dataclass(frozen=True)
class ReleasedNets:
    """Per data source, which of the FCN authors' released nets (segcore.models.released.RELEASED) are scored."""

    twin: tuple[str, ...] = field(doc="on the twins: a plumbing check of the converter (test-written files)")
    real: tuple[str, ...] = field(doc="on the real data: the published scores checked end to end")


@dataclass(frozen=True)
class Released:
    """The released nets' stages (segcore.pipeline.released): which files are converted and scored."""

    nets: ReleasedNets


@dataclass(frozen=True)
class Timing:
    """Forward-time measurement of the full-size nets (FCN paper: mean of 20 trials, 500x500)."""

    size: int = field(ge=32, le=2048)
    warmup: int = field(ge=0)
    smoke_trials: int = field(ge=1)
    paper_trials: int = field(ge=1)


@dataclass(frozen=True)
class RuntimeParams:
    """Where and how stages compute (segcore.train.runtime); the resolved values are recorded with every number."""

    device: str = field(doc="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    precision: Literal["fp32", "mixed"] = field(doc="mixed: bf16 autocast where supported, else fp16 + grad scaler")
    channels_last: bool
    workers: Literal["auto"] | int = field(ge=0, doc="DataLoader workers per training process")
    launch: str = field(doc="python, or torchrun --nproc_per_node=N [flags]: how FCN train stages start")
    numerics: Literal["portable", "native"] = field(doc="portable: pin the CPU's rounding (AVX2, fixed threads)")
    threads: int = field(ge=1, le=1024, doc="CPU threads of every computing stage in portable numerics")
    deterministic: bool = field(doc="torch's deterministic algorithms (run-to-run equality on one GPU model)")


LAUNCH = re.compile(r"python|torchrun(?: --\S+)*? --nproc[_-]per[_-]node[= ][1-9]\d*(?: --\S+)*")
DEVICE = re.compile(r"auto|cpu|cuda(?::\d+)?")


@dataclass(frozen=True)
class Params:
    """Everything in params.yaml, validated."""

    profile: Profile
    data: Literal["auto", "twin", "real"]
    scale: Literal["auto", "smoke", "paper"]
    lr: float = field(gt=0.0, lt=1.0)
    seed: int = field(ge=0)
    twin: Twin
    nyud: Nyud
    siftflow: Siftflow
    isbi: Isbi
    net: Net
    backbone: Backbone
    train: Train
    unet: Unet
    evaluate: Evaluate
    released: Released
    timing: Timing
    runtime: RuntimeParams

    @property
    def data_source(self) -> Literal["twin", "real"]:
        """The data actually used: ``data`` unless it is ``auto``, then the profile's."""
        if self.data != "auto":
            return self.data
        return "twin" if self.profile == "smoke" else "real"

    @property
    def scale_name(self) -> Profile:
        """The scale actually used: ``scale`` unless it is ``auto``, then the profile."""
        return self.profile if self.scale == "auto" else self.scale

    @property
    def width(self) -> float:
        return getattr(self.net, self.scale_name).width

    @property
    def recipe(self) -> TrainScale:
        return getattr(self.train, self.scale_name)

    @property
    def unet_recipe(self) -> UnetScale:
        return getattr(self.unet, self.scale_name)

    def base_lr(self, stage: int, backbone: str = "vgg16") -> float:
        """Learning rate of a training stage (0 = FCN-32s, 1 = FCN-16s, 2 = FCN-8s) of an FCN on ``backbone``.

        The top-level ``lr`` is the paper's FCN-VGG16 rate; a scale multiplies it by its
        ``lr_multiplier`` (1 in the paper profile) and by the backbone's ``net_lr_scale`` (paper:
        AlexNet x10, GoogLeNet x0.5), and each skip stage divides it by ``1 / stage_lr_factor``
        (100 in the paper).
        """
        recipe = self.recipe
        try:
            net_scale = recipe.net_lr_scale[backbone]
        except KeyError:
            raise ConfigError(f"train.{self.scale_name}.net_lr_scale has no {backbone!r}; "
                              f"names: {', '.join(recipe.net_lr_scale)}") from None
        return self.lr * recipe.lr_multiplier * net_scale * recipe.stage_lr_factor ** stage

    def provenance(self) -> dict[str, str]:
        """The facts every metrics file and report header carries."""
        return {"profile": self.profile, "data": self.data_source, "scale": self.scale_name}


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params.yaml; raises ConfigError with one line naming the bad key."""
    params = build(Params, load_yaml(Path(path)))
    voc = params.twin.voc
    if voc.min_size > voc.max_size:
        raise ConfigError(f"twin.voc.min_size = {voc.min_size} must be <= twin.voc.max_size = {voc.max_size}")
    tile = params.unet.smoke.eval_tile, params.unet.paper.eval_tile
    if any((t - 4) % 16 for t in tile):
        raise ConfigError(f"unet.<scale>.eval_tile = {tile} must be 16k + 4 (U-Net shifts cleanly by 16 px only)")
    sift = params.twin.siftflow
    if sift.n_unannotated >= sift.n_train:
        raise ConfigError(f"twin.siftflow.n_unannotated = {sift.n_unannotated} must be < twin.siftflow.n_train "
                          f"= {sift.n_train}")
    rt = params.runtime
    if not DEVICE.fullmatch(rt.device):
        raise ConfigError(f"runtime.device = {rt.device!r} is not allowed; use auto, cpu, cuda or cuda:N")
    if not LAUNCH.fullmatch(rt.launch):
        raise ConfigError(f"runtime.launch = {rt.launch!r} is not allowed; use python or "
                          f"torchrun --nproc_per_node=N, optionally with more --flags")
    return params
