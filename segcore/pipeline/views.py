"""What each stage reads from params.yaml, resolved: one small JSON file per consuming stage.

The ``params`` stage validates the whole of params.yaml (unknown keys included) and writes, for
every stage that reads params, the values that stage uses with the profile already resolved:
``resolved/train/fcn16s.json`` holds FCN-16s's learning rate, step count, net width and so on,
not the raw ``train.smoke`` / ``train.paper`` sections. Each stage depends on its own file, so DVC
reruns a stage exactly when a value it reads changed (editing a paper-only value leaves the smoke
stages alone), and a bad value stops the run in the first stage, before any other stage has
touched its outputs.

Why this design, not DVC's Hydra composition: the values a stage needs are computed (the base
learning rate of a skip stage, the schedule an experiment names, the profile's half of each
section), and only code can resolve them; Hydra would still hand each stage whole sections.
``dvc exp run -S lr=...`` keeps working: it edits params.yaml, the params stage reruns, and only
the stages whose file changed follow.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict

from segcore.config.params import Params
from segcore.config.schema import ConfigError
from segcore.core.numerics import Numerics
from segcore.data.specs import DATASETS
from segcore.models.backbone import ARCHS, check_paper_weights
from segcore.models.released import RELEASED
from segcore.train.experiments import EXPERIMENTS, Experiment
from segcore.train.loop import TrainSpec

def _twin(params: Params, dataset: str) -> dict | None:
    """The data set's twin sizes when the twin is used; None for real data (the twin params are then unread)."""
    return asdict(getattr(params.twin, dataset)) if params.data_source == "twin" else None


def download(params: Params, dataset: str) -> dict:
    return {"source": params.data_source, "twin": _twin(params, dataset)}


def prepare(params: Params, dataset: str) -> dict:
    """The arguments of the data set's preparation (DataSpec.prepare) that params give: its own params
    section (``nyud.val_fraction``, ``isbi.eval_fraction``; a per-scale ``hold_out`` resolved to the
    scale's value), the data source and the seed, as it asks."""
    section = asdict(getattr(params, dataset))
    if "hold_out" in section:
        section["hold_out"] = section["hold_out"][params.scale_name]
    offered = {"source": params.data_source, "seed": params.seed, **section}
    wanted = inspect.signature(DATASETS[dataset].prepare).parameters
    return {k: v for k, v in offered.items() if k in wanted}


def numerics(params: Params) -> dict:
    """What every computing stage pins before it computes (segcore.core.numerics); the stage's entry point
    (segcore.pipeline.cli.run) reads it from the view's ``numerics`` key, so a change reruns those stages."""
    rt = params.runtime
    return {"mode": rt.numerics, "threads": rt.threads, "deterministic": rt.deterministic}


def backbone(params: Params, arch: str) -> dict:
    """The paper scale loads ImageNet weights; the smoke scale pretrains on twin objects for its steps."""
    if params.scale_name == "paper":
        return {"scale": "paper", "weights": params.backbone.paper.weights[arch], "numerics": numerics(params)}
    smoke = asdict(params.backbone.smoke)
    smoke["iterations"] = {arch: smoke["iterations"][arch]}  # the other architectures' steps are unread
    return {"scale": "smoke", "width": params.width, "seed": params.seed, "pretrain": smoke,
            "numerics": numerics(params)}


def hha(params: Params) -> dict:
    """The HHA encoding reads no params but the numerics (its normals are least-squares fits in numpy)."""
    return {"numerics": numerics(params)}


def train_spec(params: Params, exp: Experiment) -> TrainSpec:
    """The optimisation of ``exp`` under the params' recipe: learning rate, schedule, batching."""
    if exp.arch == "unet":  # U-Net's own recipe (params.yaml `unet`): no stages, no bias multiplier
        u = params.unet_recipe
        return TrainSpec(lr=u.lr, optimizer=u.optimizer, momentum=u.momentum, weight_decay=u.weight_decay,
                         bias_lr_mult=1.0, batch_size=u.batch_size, iterations=exp.iterations(u),
                         normalise_loss=True, val_every=u.val_every, checkpoint_every=u.checkpoint_every,
                         seed=params.seed, images_per_forward=u.batch_size)
    r = params.recipe
    return TrainSpec(lr=params.base_lr(exp.stage, exp.backbone), optimizer=r.optimizer, momentum=r.momentum,
                     weight_decay=r.weight_decay, bias_lr_mult=r.bias_lr_mult, batch_size=r.batch_size,
                     iterations=exp.iterations(r), normalise_loss=r.normalise_loss, val_every=r.val_every,
                     checkpoint_every=r.checkpoint_every, seed=params.seed, only=exp.only,
                     images_per_forward=r.images_per_forward)


def lr_origin(params: Params, exp: Experiment) -> dict:
    """How ``spec.lr`` was made, for the training line (segcore.pipeline.train.lr_text): the params
    value and every factor the recipe applies, or the key a rate is read from as it is (U-Net)."""
    if exp.arch == "unet":
        return {"key": f"unet.{params.scale_name}.lr"}
    r = params.recipe
    return {"lr": params.lr, "scale": params.scale_name, "optimizer": r.optimizer, "lr_multiplier": r.lr_multiplier,
            "backbone": exp.backbone, "net_lr_scale": r.net_lr_scale[exp.backbone], "stage": exp.stage,
            "stage_lr_factor": r.stage_lr_factor}


def train(params: Params, name: str) -> dict:
    exp = EXPERIMENTS[name]
    rt = params.runtime
    return {
        "experiment": name,
        "spec": asdict(train_spec(params, exp)),
        "lr_origin": lr_origin(params, exp),
        "width": params.unet_recipe.width if exp.init == "scratch" else params.width,
        "learn_upsampling": params.net.learn_upsampling,
        "seed": params.seed,
        # the data it trains on, for the checkpoint's fingerprint (a resumed run must see the same data)
        "data": {"source": params.data_source, "twin": _twin(params, exp.dataset)},
        "runtime": {"device": rt.device, "precision": rt.precision, "channels_last": rt.channels_last,
                    "workers": rt.workers,
                    # U-Net's recipe is one tile per step: nothing to share out over processes
                    "launch": "python" if exp.arch == "unet" else rt.launch},
        "numerics": numerics(params),
    }


def evaluate(params: Params, name: str) -> dict:
    exp = EXPERIMENTS[name]
    return {
        "experiment": name,
        "provenance": params.provenance(),
        "figure_images": params.evaluate.figure_images,
        "eval_tile": params.unet_recipe.eval_tile if exp.arch == "unet" else None,
        "runtime": {"device": params.runtime.device, "channels_last": params.runtime.channels_last},
        "numerics": numerics(params),
    }


def released_nets(params: Params) -> tuple[str, ...]:
    """The released nets the data source scores (``released.nets.<source>``); an unknown name is refused."""
    names = getattr(params.released.nets, params.data_source)
    unknown = [n for n in names if n not in RELEASED]
    if unknown:
        raise ConfigError(f"released.nets.{params.data_source} names {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(RELEASED)}")
    return names


def released(params: Params, name: str) -> dict:
    """One released net's stage: whether it runs, and the width its file has (1 on the real data, where the
    authors' files are full size; the net's width on the twins, whose test-written files are slimmed)."""
    if name not in released_nets(params):  # nothing computed: no numerics to pin (no restart, no torch import)
        return {"net": name, "selected": False, "source": params.data_source}
    return {"net": name, "selected": True, "source": params.data_source,
            "width": 1.0 if params.data_source == "real" else params.width,
            "provenance": params.provenance(), "figure_images": params.evaluate.figure_images,
            "runtime": {"device": params.runtime.device, "channels_last": params.runtime.channels_last},
            "numerics": numerics(params)}


def released_report(params: Params) -> dict:
    """reports/released.md reads which profile and data produced the scores (its header), nothing else."""
    return {"profile": params.profile, "data_source": params.data_source, "scale_name": params.scale_name}


def timing(params: Params) -> dict:
    """The paper profile times the paper's 20 trials; the smoke profile, on a laptop CPU, fewer."""
    t = params.timing
    return {"size": t.size, "warmup": t.warmup, "seed": params.seed, "device": params.runtime.device,
            "trials": t.paper_trials if params.profile == "paper" else t.smoke_trials, "numerics": numerics(params)}


def report(params: Params) -> dict:
    return {"profile": params.profile, "data_source": params.data_source, "scale_name": params.scale_name,
            "lr": params.lr, "width": params.width, "learn_upsampling": params.net.learn_upsampling,
            "recipe": asdict(params.recipe), "unet_recipe": asdict(params.unet_recipe),
            "twin": asdict(params.twin) if params.data_source == "twin" else None}


def check_per_arch(params: Params) -> None:
    """Mappings keyed by backbone architecture name each of segcore.models.backbone.ARCHS, no more, and
    each architecture's paper weights ones it has a net for (segcore.models.backbone.paper_weights)."""
    mappings = {"backbone.smoke.iterations": params.backbone.smoke.iterations,
                "backbone.paper.weights": params.backbone.paper.weights,
                "train.smoke.net_lr_scale": params.train.smoke.net_lr_scale,
                "train.paper.net_lr_scale": params.train.paper.net_lr_scale}
    for key, mapping in mappings.items():
        if set(mapping) != set(ARCHS):
            raise ConfigError(f"{key} names {', '.join(mapping)}; it needs exactly the backbones "
                              f"{', '.join(ARCHS)}")
    for arch, weights in params.backbone.paper.weights.items():
        check_paper_weights(arch, weights)  # e.g. no torchvision weights fit our (CaffeNet) AlexNet


def all_views(params: Params) -> dict[str, dict]:
    """{relative path under resolved/: view} for every stage that reads params.

    Every experiment's view is computed, including those not in dvc.yaml, so a bad schedule or rate
    is refused here whichever nets the DAG trains.
    """
    check_per_arch(params)
    Numerics.from_view(numerics(params)).check_machine()  # portable mode on a CPU without the pinned ISA
    views: dict[str, dict] = {f"download/{d}.json": download(params, d) for d in DATASETS}
    views.update({f"prepare/{d}.json": prepare(params, d) for d, s in DATASETS.items() if s.prepare})
    views.update({f"backbone/{a}.json": backbone(params, a) for a in ARCHS})
    for name in EXPERIMENTS:
        views[f"train/{name}.json"] = train(params, name)
        views[f"evaluate/{name}.json"] = evaluate(params, name)
    views.update({f"released/{n}.json": released(params, n) for n in RELEASED})
    views["released_report.json"] = released_report(params)
    views["hha.json"] = hha(params)
    views["timing.json"] = timing(params)
    views["report.json"] = report(params)
    return views


def dumps(view: dict) -> str:
    """Stable text: the same values give the same bytes, so DVC sees no change."""
    return json.dumps(view, indent=1, sort_keys=True) + "\n"
