"""What every table builder receives (Context) and the header every report page carries (provenance).

The reports read params only through the attributes of ReportParams, so the report stage can pass
a narrow view of params.yaml (segcore.pipeline.report) as well as the whole Params.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from segcore.config.params import TrainScale, Twin, UnetScale
from segcore.data.specs import DATASETS
from segcore.data.voc import DataError
from segcore.report import figures, results
from segcore.models.backbone import load_record
from segcore.train.experiments import EXPERIMENTS

GENERATED = ("reports", "metrics", "resolved", "dvc.lock")  # tracked outputs of `dvc repro`


class ReportParams(Protocol):
    """The only params a report reads: segcore.config.params.Params, or the report stage's view of it."""

    profile: str
    data_source: str     # "twin" or "real"
    scale_name: str      # "smoke" or "paper"
    lr: float            # FCN-VGG16's base learning rate
    width: float         # channel width multiplier of the FCNs
    recipe: TrainScale   # the active FCN training scale (schedules, batch, optimizer)
    unet_recipe: UnetScale
    twin: Twin | None    # the twins' sizes (None on real data)
    net: Any             # .learn_upsampling


@dataclass(frozen=True)
class Context:
    """The report stage's inputs: params and the folders the stage outputs were read from."""

    params: ReportParams
    data_root: Path    # data/voc (Figure 4's images)
    metrics_dir: Path  # metrics/<experiment>.json, timing.json
    eval_dir: Path     # eval/<experiment>/ (predictions, per-class IU, figure data)
    models_dir: Path   # models/<experiment>/live (curves), models/backbone (records)
    seeds_note: str | None = None  # whether reports/claims-seeds.md is current (segcore.report.fingerprint.note)

    @property
    def smoke(self) -> bool:
        """Pages carry the smoke warning unless the real data and the paper scale were both used."""
        p = self.params
        return p.profile == "smoke" or p.data_source == "twin" or p.scale_name == "smoke"

    def metrics(self, name: str) -> dict:
        """An experiment's scores (metrics/<name>.json) joined with its record (eval/<name>/record.json):
        per split, scores and counts, plus what produced them. ``timing``: the timing stage's."""
        files = (Path(self.metrics_dir) / f"{name}.json", Path(self.eval_dir) / name / results.RECORD)
        try:
            return results.read(*files)
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read the results of {name} ({files[0]}, {files[1]}): {err}") from None


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read metrics file {path}: {err}") from None


def code_version(cwd: Path | None = None) -> str:
    """Short hash of the last commit that changed the code (anything but the pipeline's own tracked outputs),
    with a mark when the working tree has uncommitted changes. Why not HEAD: a commit of rerun results
    changes no code, and a rebuild of it (make verify) must name the same code as the run it rebuilds."""
    excluded = [f":(exclude){p}" for p in GENERATED]
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h", "--", ".", *excluded], cwd=cwd,
                              capture_output=True, text=True, check=True).stdout.strip()
        # Outputs the pipeline writes itself (DVC deletes a stage's outputs before running it) do not
        # make the code dirty; edits to code, dvc.yaml or params.yaml do.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded],
                               cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def training_description(trained_on: dict | None) -> str:
    """'NVIDIA H100 ..., 4 processes, bf16 mixed precision' from a model file's record of its training run."""
    if not trained_on:
        return "? (model file written before the training device was recorded)"
    procs = trained_on["processes"]
    precision = "fp32" if trained_on["precision"] == "fp32" else f"{trained_on['precision']} mixed precision"
    return f"{trained_on['device']}, {procs} process{'es' if procs > 1 else ''}, {precision}"


def data_line(params: ReportParams, exp, metrics: dict, split: str, trained: bool = True) -> str:
    """The header's data row: the data set (or its twin), then '[trained on <train split>, ]<n> <split> images'.

    ``exp``: the experiment (segcore.train.experiments) whose ``metrics`` are scored on ``split``.
    """
    spec = DATASETS[exp.dataset]
    described = spec.describe(params.data_source, getattr(params.twin, exp.dataset, None))
    scored = spec.scored.format(split=split, **metrics[split])
    if not trained:
        return f"{described}; {scored}"
    return f"{described}; {trained_on(exp, metrics.get('training_data'))}, {scored}"


def trained_on(exp, data: dict | None) -> str:
    """'trained on 795 train images (validation curves: 80 of them, not held out)': the training-set
    size actually used, and where the validation curves came from, as the model file recorded them."""
    if not data:
        return f"trained on {exp.train_split}"
    curves = (f"{data['val_images']} {data['val_split']} images, held out" if data["val_held_out"]
              else f"{data['val_images']} of them, not held out")
    return f"trained on {data['images']} {data['split']} images (validation curves: {curves})"


def backbone_sources(models_dir: Path, archs: tuple[str, ...]) -> str:
    """'vgg16: <source>; alexnet: ...' from the backbone records the nets started from."""
    sources = {a: load_record(Path(models_dir) / "backbone" / f"{a}.pt", a)["source"] for a in archs}
    if len(set(sources.values())) == 1:
        return f"{', '.join(archs)}: {sources[archs[0]]}"
    return "; ".join(f"{a}: {source}" for a, source in sources.items())


def provenance(params: ReportParams, metrics: dict, backbone: str, data_desc: str,
               schedule: str) -> dict[str, str]:
    """The header every table carries: which profile, data, device, code and date produced it."""
    recipe = params.recipe
    return {
        "profile": params.profile,
        "data": data_desc,
        "scale": (f"{params.scale_name}: width x{params.width:g}, {schedule} of {recipe.batch_size} images, "
                  f"{recipe.optimizer}, base lr {params.lr:g} x {recipe.lr_multiplier:g}"),
        "backbone": backbone,
        "training": training_description(metrics.get("trained_on")),
        "device (evaluation)": metrics.get("device", "?"),
        "torch": metrics.get("torch", "?"),
        "code": code_version(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def live_series(models_dir: Path, name: str) -> tuple[Path, Path]:
    """A trained net's dvclive curves: (training loss .tsv, validation mean IU .tsv)."""
    live = Path(models_dir) / name / "live" / "plots" / "metrics"
    return live / "train" / "loss.tsv", live / "val" / "mean_iu.tsv"


def family_curves(ctx: Context, names: tuple[str, ...], out: Path) -> Path:
    """``out``: training loss and validation mean IU of ``names``, staged nets on a continuing step axis."""
    figures.training_curves({EXPERIMENTS[n].label: live_series(ctx.models_dir, n) for n in names}, out)
    return out
