"""The train stages: build an experiment's net, seed it, train it, write model.pt and its curves."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
from pathlib import Path

import torch

from segcore.config.schema import ConfigError, build
from segcore.core import atomic
from segcore.data import specs as datasets
from segcore.data.download import file_digest
from segcore.data.preprocess import Preprocess
from segcore.models import backbone as backbone_mod
from segcore.models.fusion import STREAMS
from segcore.models.modelfile import read_model_record, save_model
from segcore.models.registry import build_model
from segcore.models.surgery import transplant, transplant_streams, widen_input
from segcore.train.experiments import get_experiment
from segcore.train.loop import TrainSpec, load_checkpoint, spec_fingerprint, train
from segcore.train.runtime import Runtime

LOSS_CURVE = "plots/metrics/train/loss.tsv"  # dvclive's file for live.log_metric("train/loss")
# Model-record key: the step axis position of the net's last step, counted from its first ancestor's
# first step. A staged net's curves continue from there (FCN-16s after FCN-32s), in dvc plots too.
LAST_STEP = "last_step"


def code_digest() -> str:
    """Digest of segcore's source: a checkpoint written by other code is never resumed."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def initial_model(view: dict, backbone: Path | None, inits: list[Path]):
    """Build the experiment's net and seed it: from the backbone trunk, its trained parent(s), or scratch.

    ``view``: the experiment's resolved params (segcore.pipeline.views.train). ``inits``: the
    backbone record, one model file per parent (per stream for a fusion net), or nothing for a net
    trained from scratch (U-Net, initialised as its paper under ``seed``). Returns (experiment,
    model, steps before): the optimizer steps its parents took, where its own curves start.
    """
    name = view["experiment"]
    exp = get_experiment(name)
    channels = datasets.in_channels(exp)
    scratch = exp.init == "scratch"
    if scratch:
        torch.manual_seed(view["seed"])
    model = build_model(exp.arch, n_classes=datasets.n_classes(exp), width=view["width"],
                        learn_upsampling=view["learn_upsampling"], in_channels=channels)
    inits = [Path(p) for p in inits or ()]
    expected = 0 if scratch else max(1, len(exp.parents))
    if len(inits) != expected:
        raise ConfigError(f"{name} starts from {expected} file(s) ({exp.init}), got {len(inits)}")
    if scratch:
        return exp, model, 0
    if exp.init == "backbone":
        record = backbone_mod.load_record(inits[0], exp.backbone)
        if record["width"] != view["width"]:
            raise ConfigError(f"backbone {inits[0]} has width {record['width']} but net width is {view['width']}; "
                              f"rerun the backbone stage")
        trunk = record["trunk"]
        if channels > 3:  # early fusion (RGBD): the extra channel starts as the mean RGB filter
            trunk = widen_input(trunk, "conv1_1.weight", channels)
        transplant(trunk, model)
        return exp, model, 0
    states, before = [], 0
    for parent, path in zip(exp.parents, inits):
        record = read_model_record(path)
        if record.get("experiment") != parent:
            raise ConfigError(f"{name} starts from {parent}, but {path} holds {record.get('experiment')!r}")
        states.append(record["state_dict"])
        before = max(before, record.get(LAST_STEP, 0))  # streams trained side by side: the longer one
    if len(states) > 1:
        transplant_streams(dict(zip(STREAMS, states)), model)
    else:
        transplant(states[0], model)
    return exp, model, before


def train_experiment(view: dict, data_root: Path, backbone: Path | None, inits: list[Path],
                     out_dir: Path, checkpoint: Path, runtime: Runtime | None = None, progress: bool = True,
                     hha_root: Path | None = None) -> dict:
    """Train one experiment of segcore.train.experiments; writes model.pt and dvclive logs (live/) under out_dir.

    ``view``: its resolved params (segcore.pipeline.views.train). ``hha_root``: the hha stage's
    output, for NYUD experiments that read HHA. ``backbone`` is None for a net trained from
    scratch. The curves grow in ``<checkpoint>.live/`` beside it and are copied into out_dir at
    the end: the stage's outputs are then whole files DVC can cache and restore from its
    run-cache, while a killed run keeps its checkpoint and curves to resume. A finished run
    removes both.
    ``runtime``: one CPU process by default; under torchrun every rank trains, rank 0 writes.
    """
    from dvclive import Live

    runtime = runtime or Runtime(torch.device("cpu"))
    exp, model, before = initial_model(view, backbone, inits)
    if exp.backbone is None:
        rgb = datasets.scratch_preprocess(exp)
    elif backbone is None:
        raise ConfigError(f"{exp.name} starts from the {exp.backbone} backbone: pass its record (--backbone)")
    else:
        rgb = Preprocess.from_dict(backbone_mod.load_record(Path(backbone), exp.backbone)["preprocess"])
    inputs_files = [*inits, *([backbone] if backbone else [])]
    inputs = datasets.make_inputs(exp, rgb, Path(data_root), hha_root)
    train_set, val_set = (datasets.split_dataset(exp, s, Path(data_root), hha_root, inputs)
                          for s in (exp.train_split, exp.val_split))
    spec = build(TrainSpec, view["spec"])
    n_classes = datasets.n_classes(exp)
    fingerprint = spec_fingerprint(spec, exp.name, *(file_digest(Path(p), "sha256") for p in inputs_files),
                                   json.dumps(view["data"], sort_keys=True), str(view["width"]),
                                   runtime.signature(), code_digest())
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    live_dir = checkpoint.with_suffix(".live")  # checkpoints/<key>/checkpoint.live
    if runtime.main:
        _prepare_resume(checkpoint, live_dir, fingerprint, before)
    runtime.barrier()  # the other ranks read the checkpoint only once rank 0 has decided on it
    resumed = checkpoint.exists()
    with (Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resumed, report=None)
          if runtime.main else contextlib.nullcontext()) as live:
        last = train(model, train_set, val_set, spec, n_classes=n_classes, checkpoint=checkpoint,
                     fingerprint=fingerprint, live=live, runtime=runtime, progress=progress, step_offset=before)
    if runtime.main:
        save_model(out_dir / "model.pt", model.cpu(), arch=exp.arch, n_classes=n_classes, width=view["width"],
                   learn_upsampling=view["learn_upsampling"], preprocess=inputs.rgb, experiment=exp.name,
                   lr=spec.lr, val=last, in_channels=datasets.in_channels(exp),
                   hha_preprocess=inputs.to_dict()["hha_preprocess"], trained_on=runtime.record(),
                   training_data=training_data(exp, train_set, val_set), **{LAST_STEP: before + spec.iterations})
        atomic.build_dir(out_dir / "live", lambda tmp: shutil.copytree(live_dir, tmp))
        # The run is whole in out_dir now: its working state would only hold disk (1.6 GB per full-size net).
        checkpoint.unlink(missing_ok=True)
        shutil.rmtree(live_dir, ignore_errors=True)
    # Every rank leaves together, once rank 0 has written the model: a rank tearing down its process
    # group while another is still in its last writes aborted at exit, now and then, on gloo.
    runtime.barrier()
    return {"lr": spec.lr, **last}


def lr_text(lr: float, origin: dict | None) -> str:
    """The rate a net trained at, and how params.yaml's ``lr`` became it, for the stage's last line.

    '0.0001 (= lr 1e-05 x 10, the smoke profile's multiplier for adam)': without the second half a user
    who ran `dvc exp run -S lr=1e-5` reads 0.0001 as their value ignored. ``origin``: the view's
    ``lr_origin`` (segcore.pipeline.views.train): ``{"key": ...}`` for a rate read as it is (U-Net),
    else ``lr`` and the factors the FCN recipe applies. Without it, or if the factors do not give
    ``lr``, the rate alone.
    """
    if not origin:
        return f"{lr:g}"
    if "key" in origin:
        return f"{lr:g} ({origin['key']})"
    scale, stage = origin["scale"], origin["stage"]  # the scale: train.<scale> of params.yaml
    factors = [(origin["lr_multiplier"], f", the {scale} profile's multiplier for {origin['optimizer']}"),
               (origin["net_lr_scale"], f" for {origin['backbone']}"),
               (origin["stage_lr_factor"] ** stage, f" for skip stage {stage}")]
    product = origin["lr"] * math.prod(f for f, _ in factors)
    shown = [f"x {f:g}{why}" for f, why in factors if f != 1]
    if not shown or not math.isclose(product, lr, rel_tol=1e-9):
        return f"{lr:g}"
    return f"{lr:g} (= lr {origin['lr']:g} {', '.join(shown)})"


def training_data(exp, train_set, val_set) -> dict:
    """What the net was trained and validated on, for the reports: split names, image counts, and whether
    the validation images were held out of training (the papers trained on every training image)."""
    train_ids, val_ids = set(train_set.ids), set(val_set.ids)
    return {"split": exp.train_split, "images": len(train_ids), "val_split": exp.val_split,
            "val_images": len(val_ids), "val_held_out": not train_ids & val_ids}


def _prepare_resume(checkpoint: Path, live_dir: Path, fingerprint: str, step_offset: int = 0) -> None:
    """Keep ``checkpoint`` only if it continues this very run and its curves are still there.

    Otherwise weights and curves start afresh together, so the logged curves always match the weights.
    A kept run's curves are cut back to the checkpoint's step (on the axis that starts after
    ``step_offset`` steps of its parents): the killed run logged steps past its last checkpoint,
    which the resumed run logs again.
    """
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(checkpoint, fingerprint)
    if state is not None and not (live_dir / LOSS_CURVE).exists():
        print(f"{checkpoint} has no training curves beside it; training from the start")
        state = None
    if state is None:
        checkpoint.unlink(missing_ok=True)
        shutil.rmtree(live_dir, ignore_errors=True)
        return
    for curve in sorted(live_dir.rglob("*.tsv")):
        truncate_curve(curve, step_offset + state["step"])


def truncate_curve(path: Path, step: int) -> None:
    """Keep the header and the rows of a dvclive TSV curve logged at or before ``step``."""
    header, *rows = path.read_text().splitlines(keepends=True)
    column = header.rstrip("\n").split("\t").index("step")
    kept = [r for r in rows if int(r.split("\t")[column]) <= step]
    if len(kept) < len(rows):
        atomic.write_text(path, header + "".join(kept))
