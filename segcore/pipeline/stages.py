"""What each DVC stage does, as functions of validated params and explicit paths.

The scripts in stages/ parse their paths, load params and call one function here; nothing here
reads argv or params.yaml.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from segcore.core import atomic
from segcore.data import specs as datasets
from segcore.models import heads
from segcore.models import backbone as backbone_mod
from segcore.data import voc
from segcore.core.device import environment, place
from segcore.eval.predict import accumulate_heads, predict, write_submission
from segcore.data.download import file_digest
from segcore.train.experiments import Experiment, get_experiment
from segcore.eval.metrics import per_class_iu, scores
from segcore.models.modelfile import load_model, read_model_record, save_model
from segcore.models.registry import build_model
from segcore.config.params import Params
from segcore.train.runtime import Runtime
from segcore.data.preprocess import Preprocess
from segcore.models.fusion import STREAMS
from segcore.models.surgery import transplant, transplant_streams, widen_input
from segcore.train.loop import TrainSpec, load_checkpoint, spec_fingerprint, train

N_VOC_CLASSES = len(voc.CLASSES)
LOSS_CURVE = "plots/metrics/train/loss.tsv"  # dvclive's file for live.log_metric("train/loss")


def download_voc(params: Params, out: Path, archives: Path, progress: bool = True,
                 catalog: dict | None = None, check_count: bool = True) -> None:
    """VOC2011 + VOC2012 + SBD under ``out``: the synthetic twin, or the real verified downloads.

    ``catalog`` replaces segcore.data.download.CATALOG (tests serve twin archives from 127.0.0.1);
    ``check_count`` asserts the real data's 736 seg11valid images.
    """
    out = Path(out)
    if params.data_source == "twin":
        if out.exists():
            shutil.rmtree(out)  # the stage owns this output; rebuild it whole
        from segcore.data.twin_voc import write_voc_twin

        write_voc_twin(out, **asdict(params.twin.voc))
        return
    from segcore.data.download import CATALOG, ensure

    catalog = catalog or CATALOG
    out.mkdir(parents=True, exist_ok=True)
    for key in ("voc2012", "voc2011", "sbd"):
        ensure(catalog[key], Path(archives), out, progress=progress)
    ids = [s.id for s in voc.split_samples(out, "seg11valid")]
    voc.check_seg11valid_count(ids, real=check_count)


def make_backbone(params: Params, arch: str, out: Path, progress: bool = True) -> dict:
    """Pretrained ``arch`` classifier -> fc/conv surgery -> backbone record at ``out``; returns its summary."""
    backbone_mod.get_arch(arch)  # an unknown name fails before any download or training
    if params.scale_name == "paper":
        record = backbone_mod.imagenet(arch, params.backbone.paper.weights, progress)
    else:
        record = backbone_mod.pretrain_smoke(arch, params.width, params.backbone.smoke, params.seed, progress)
    backbone_mod.save_record(record, Path(out))
    return {k: v for k, v in record.items() if k != "trunk"}


def code_digest() -> str:
    """Digest of segcore's source: a checkpoint written by other code is never resumed."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def initial_model(params: Params, name: str, backbone: Path | None, inits: list[Path]):
    """Build the experiment's net and seed it: from the backbone trunk, its trained parent(s), or scratch.

    ``inits``: the backbone record, one model file per parent (per stream for a fusion net), or
    nothing for a net trained from scratch (U-Net, initialised as its paper under ``seed``).
    """
    exp = get_experiment(name)
    channels = datasets.in_channels(exp)
    scratch = exp.init == "scratch"
    if scratch:
        torch.manual_seed(params.seed)
    width = params.unet_recipe.width if scratch else params.width
    model = build_model(exp.arch, n_classes=datasets.n_classes(exp), width=width,
                        learn_upsampling=params.net.learn_upsampling, in_channels=channels)
    inits = [Path(p) for p in inits or ()]
    expected = 0 if scratch else max(1, len(exp.parents))
    if len(inits) != expected:
        raise ValueError(f"{name} starts from {expected} file(s) ({exp.init}), got {len(inits)}")
    if scratch:
        return exp, model
    if exp.init == "backbone":
        record = backbone_mod.load_record(inits[0], exp.backbone)
        if record["width"] != params.width:
            raise ValueError(f"backbone {inits[0]} has width {record['width']} but net width is {params.width}; "
                             f"rerun the backbone stage")
        trunk = record["trunk"]
        if channels > 3:  # early fusion (RGBD): the extra channel starts as the mean RGB filter
            trunk = widen_input(trunk, "conv1_1.weight", channels)
        transplant(trunk, model)
        return exp, model
    states = []
    for parent, path in zip(exp.parents, inits):
        record = read_model_record(path)
        if record.get("experiment") != parent:
            raise ValueError(f"{name} starts from {parent}, but {path} holds {record.get('experiment')!r}")
        states.append(record["state_dict"])
    if len(states) > 1:
        transplant_streams(dict(zip(STREAMS, states)), model)
    else:
        transplant(states[0], model)
    return exp, model


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


def train_experiment(params: Params, name: str, data_root: Path, backbone: Path | None, inits: list[Path],
                     out_dir: Path, checkpoint: Path, runtime: Runtime | None = None, progress: bool = True,
                     hha_root: Path | None = None) -> dict:
    """Train one experiment of segcore.train.experiments; writes model.pt and dvclive logs (live/) under out_dir.

    ``hha_root``: the hha stage's output, for NYUD experiments that read HHA. ``backbone`` is None
    for a net trained from scratch. The curves grow in ``<checkpoint>.live/`` beside it and are
    copied into out_dir at the end: the stage's outputs are then whole files DVC can cache and
    restore from its run-cache, while a killed run keeps its checkpoint and curves to resume.
    ``runtime``: one CPU process by default; under torchrun every rank trains, rank 0 writes.
    """
    from dvclive import Live

    runtime = runtime or Runtime(torch.device("cpu"))
    exp, model = initial_model(params, name, backbone, inits)
    if exp.backbone is None:
        rgb = datasets.scratch_preprocess(exp)
    elif backbone is None:
        raise ValueError(f"{name} starts from the {exp.backbone} backbone: pass its record (--backbone)")
    else:
        rgb = Preprocess.from_dict(backbone_mod.load_record(Path(backbone), exp.backbone)["preprocess"])
    inputs_files = [*inits, *([backbone] if backbone else [])]
    inputs = datasets.make_inputs(exp, rgb, Path(data_root), hha_root)
    train_set, val_set = (datasets.split_dataset(exp, s, Path(data_root), hha_root, inputs)
                          for s in (exp.train_split, exp.val_split))
    spec = train_spec(params, exp)
    n_classes = datasets.n_classes(exp)
    fingerprint = spec_fingerprint(spec, name, *(file_digest(Path(p), "sha256") for p in inputs_files),
                                   json.dumps(asdict(params.twin)), params.data_source, str(params.width),
                                   runtime.signature(), code_digest())
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    live_dir = checkpoint.with_suffix(".live")  # checkpoints/<key>/checkpoint.live
    if runtime.main:
        _prepare_resume(checkpoint, live_dir, fingerprint)
    runtime.barrier()  # the other ranks read the checkpoint only once rank 0 has decided on it
    resumed = checkpoint.exists()
    with (Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resumed, report=None)
          if runtime.main else contextlib.nullcontext()) as live:
        last = train(model, train_set, val_set, spec, n_classes=n_classes, checkpoint=checkpoint,
                     fingerprint=fingerprint, live=live, runtime=runtime, progress=progress)
    if runtime.main:
        width = params.unet_recipe.width if exp.init == "scratch" else params.width
        save_model(out_dir / "model.pt", model.cpu(), arch=exp.arch, n_classes=n_classes, width=width,
                   learn_upsampling=params.net.learn_upsampling, preprocess=inputs.rgb, experiment=name,
                   lr=spec.lr, val=last, in_channels=datasets.in_channels(exp),
                   hha_preprocess=inputs.to_dict()["hha_preprocess"], trained_on=runtime.record())
        atomic.build_dir(out_dir / "live", lambda tmp: shutil.copytree(live_dir, tmp))
    return {"lr": spec.lr, **last}


def _prepare_resume(checkpoint: Path, live_dir: Path, fingerprint: str) -> None:
    """Keep ``checkpoint`` only if it continues this very run and its curves are still there.

    Otherwise weights and curves start afresh together, so the logged curves always match the weights.
    """
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    resumable = load_checkpoint(checkpoint, fingerprint) is not None
    if resumable and not (live_dir / LOSS_CURVE).exists():
        print(f"{checkpoint} has no training curves beside it; training from the start")
        resumable = False
    if not resumable:
        checkpoint.unlink(missing_ok=True)
        shutil.rmtree(live_dir, ignore_errors=True)


def _percent(d: dict[str, float]) -> dict[str, float]:
    return {k: round(100 * v, 4) for k, v in d.items()}


def split_scores(exp: Experiment, hists: list, images: int) -> tuple[dict, dict]:
    """Metrics (percent) and per-class IU of one split from its per-head confusion matrices.

    The first head gives the four metrics of the paper; every further head its pixel accuracy
    (SIFT Flow: ``geo_acc``). SIFT Flow's means skip classes absent from the split's ground truth,
    found from the matrix, and the result names them.
    """
    classes = datasets.HEADS[exp.dataset]
    exclude = exp.dataset in datasets.EXCLUDE_ABSENT
    first, *others = classes
    metrics = _percent(scores(hists[0], exclude_absent=exclude))
    metrics.update({f"{name}_acc": round(100 * scores(h)["pixel_acc"], 4) for name, h in zip(others, hists[1:])})
    per_class = {name or "iu": per_class_iu(h, list(names)) for (name, names), h in zip(classes.items(), hists)}
    if exclude:
        absent = [c for c, rows in zip(classes[first], hists[0].sum(1)) if rows == 0]
        per_class["absent_from_ground_truth"] = absent
        metrics["classes_scored"] = len(classes[first]) - len(absent)
    metrics["images"] = images
    return metrics, (per_class if len(per_class) > 1 else per_class["iu"])


def evaluate_experiment(params: Params, name: str, data_root: Path, model_path: Path, metrics_out: Path,
                        eval_dir: Path, keep: int, device: str = "cpu", hha_root: Path | None = None,
                        channels_last: bool = True) -> dict:
    """Score the val split (and the test split where labels exist) into one metrics JSON.

    Keeps the first ``keep`` val predictions as palette PNGs for the report's figure; where the
    test labels are withheld (real VOC), writes the evaluation-server archive instead.
    """
    exp = get_experiment(name)
    model, _, record = load_model(Path(model_path))
    inputs = datasets.Inputs.from_record(record)
    place(model, device, channels_last)
    eval_dir = Path(eval_dir)
    if eval_dir.exists():
        shutil.rmtree(eval_dir)
    (eval_dir / "preds").mkdir(parents=True)
    metrics: dict = {**params.provenance(), **environment(device), "trained_on": record.get("trained_on")}
    if exp.dataset == "isbi":  # the challenge's scores on held-out slices, by overlap-tile inference
        from segcore.pipeline.unet import evaluate_isbi

        metrics[exp.val_split] = evaluate_isbi(model, inputs.rgb, Path(data_root), params.unet_recipe.eval_tile,
                                               eval_dir, device)
        atomic.write_json(Path(metrics_out), metrics)
        return metrics
    n_classes = datasets.n_classes(exp)
    split_of = lambda split: datasets.split_dataset(exp, split, Path(data_root), hha_root, inputs)  # noqa: E731
    val = split_of(exp.val_split)
    hists, kept = accumulate_heads(model, val, n_classes, device, keep=keep, channels_last=channels_last)
    metrics[exp.val_split], per_class_val = split_scores(exp, hists, len(val))
    for sample_id, pred in kept.items():
        voc.write_label_png(eval_dir / "preds" / f"{sample_id}.png", pred, heads.sizes(n_classes)[0])
    per_class = {exp.val_split: per_class_val}
    if exp.test_split:
        test = split_of(exp.test_split)
        if exp.dataset == "voc" and test.samples and test.samples[0].label is None:
            # real VOC test: labels live on the evaluation server
            preds = ((sid, predict(model.eval(), x, device, channels_last).numpy()) for x, _, sid in test)
            count = write_submission(preds, voc.palette(), eval_dir / f"{exp.test_split}_submission.tar.gz")
            metrics[exp.test_split] = {"submitted_images": count}
        else:
            hists, _ = accumulate_heads(model, test, n_classes, device, channels_last=channels_last)
            metrics[exp.test_split], per_class[exp.test_split] = split_scores(exp, hists, len(test))
    atomic.write_json(eval_dir / "per_class_iu.json", per_class)
    atomic.write_json(Path(metrics_out), metrics)
    return metrics


# FCN-8s for Table 3; the three nets of Table 1 (FCN-VGG16 is fcn32s).
TIMED_MODELS = ("fcn8s", "fcn-alexnet", "fcn32s", "fcn-googlenet")


def time_paper_nets(params: Params, out: Path, device: str = "cpu") -> dict:
    """Forward times of the full-size nets (whatever the profile) on ``device``, into ``out`` (JSON).

    The paper profile runs ``timing.paper_trials`` trials (the paper's 20); the smoke profile, on a
    laptop CPU, the fewer ``timing.smoke_trials``. The count is in the result, and the tables print it.
    """
    from segcore.report.timing import time_models

    t = params.timing
    trials = t.paper_trials if params.profile == "paper" else t.smoke_trials
    torch.manual_seed(params.seed)
    # Always the full-size nets: timings describe the paper's architectures, whatever the scale.
    build = lambda name: build_model(name, n_classes=N_VOC_CLASSES, width=1.0)  # noqa: E731
    result = time_models(build, TIMED_MODELS, t.size, trials, t.warmup, device)
    atomic.write_json(Path(out), result)
    return result
