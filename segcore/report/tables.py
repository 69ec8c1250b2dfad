"""Assemble the report pages (Tables 1 to 4, Figure 4, training curves) from stage outputs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from segcore.report import figures
from segcore.report import paper
from segcore.report import render as report
from segcore.models.backbone import ARCHS, load_record
from segcore.data import voc
from segcore.train.experiments import EXPERIMENTS
from segcore.config.params import Params
from segcore.report.table1 import TABLE1_EXPERIMENTS, build_table1
from segcore.report.table4 import TABLE4_EXPERIMENTS, build_table4
from segcore.report.table5 import TABLE5_EXPERIMENTS, build_table5
from segcore.report.table_unet import UNET_EXPERIMENTS, build_unet, optimizer_text

FIGURE_MODELS = ("fcn32s", "fcn16s", "fcn8s")
GENERATED = ("reports", "metrics", "dvc.lock")  # tracked outputs of `dvc repro`


def code_version(cwd: Path | None = None) -> str:
    """Short commit hash of the code, with a mark when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, check=True).stdout.strip()
        # Outputs the pipeline writes itself (DVC deletes a stage's outputs before running it) do not
        # make the code dirty; edits to code, dvc.yaml or params.yaml do.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){p}" for p in GENERATED)],
                               cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read metrics file {path}: {err}") from None


def provenance(params: Params, metrics: dict, backbone: str, data_desc: str, schedule: str) -> dict[str, str]:
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


def training_description(trained_on: dict | None) -> str:
    """'NVIDIA H100 ..., 4 processes, bf16 mixed precision' from a model file's record of its training run."""
    if not trained_on:
        return "? (model file written before the training device was recorded)"
    procs = trained_on["processes"]
    precision = "fp32" if trained_on["precision"] == "fp32" else f"{trained_on['precision']} mixed precision"
    return f"{trained_on['device']}, {procs} process{'es' if procs > 1 else ''}, {precision}"


def data_description(params: Params, train_split: str, val_split: str, val_images: int) -> str:
    if params.data_source == "twin":
        return (f"synthetic VOC + SBD twin (segcore.data.twin_voc, seed {params.twin.voc.seed}); trained on "
                f"{train_split}, {val_images} {val_split} images")
    return (f"PASCAL VOC2011/2012 + SBD, md5-verified downloads; trained on {train_split}, "
            f"{val_images} {val_split} images")


def backbone_sources(models_dir: Path, archs: tuple[str, ...]) -> str:
    """'vgg16: <source>; alexnet: ...' from the backbone records the nets started from."""
    sources = {a: load_record(Path(models_dir) / "backbone" / f"{a}.pt", a)["source"] for a in archs}
    if len(set(sources.values())) == 1:
        return f"{', '.join(archs)}: {sources[archs[0]]}"
    return "; ".join(f"{a}: {source}" for a, source in sources.items())


def build_reports(params: Params, data_root: Path, metrics_dir: Path, eval_dir: Path, models_dir: Path,
                  out: Path) -> list[Path]:
    """Write reports/table1.md ... table5.md, figure4.png and curves.png; returns the paths."""
    names = [row.experiment for row in paper.TABLE2.rows if row.experiment]
    metrics = {name: _read_json(Path(metrics_dir) / f"{name}.json") for name in names}
    all_timing = _read_json(Path(metrics_dir) / "timing.json")
    timing = all_timing["fcn8s"]
    first = metrics["fcn8s"]
    r = params.recipe
    info = provenance(params, first, backbone_sources(models_dir, ("vgg16",)),
                      data_description(params, "sbd_train", "seg11valid", first["seg11valid"]["images"]),
                      f"{EXPERIMENTS['fcn32s'].iterations(r)} steps (32s) / {EXPERIMENTS['fcn16s'].iterations(r)} (16s, 8s)")
    smoke = params.profile == "smoke" or params.data_source == "twin" or params.scale_name == "smoke"
    out = Path(out)
    table1 = _table1(params, metrics_dir, models_dir, all_timing, smoke, out / "table1.md")
    table4 = _table4(params, metrics_dir, models_dir, smoke, out / "table4.md")
    table5 = _table5(params, metrics_dir, eval_dir, models_dir, smoke, out / "table5.md")
    unet_pages = _unet(params, metrics_dir, eval_dir, smoke, out / "unet.md")
    figures.training_curves(
        {EXPERIMENTS[n].label: (Path(models_dir) / n / "live/plots/metrics/train/loss.tsv",
                                Path(models_dir) / n / "live/plots/metrics/val/mean_iu.tsv") for n in names},
        out / "curves.png")
    _figure4(data_root, eval_dir, out / "figure4.png")
    ours2 = {n: m["seg11valid"] for n, m in metrics.items()}
    unet_voc = _read_json(Path(metrics_dir) / "unet-voc.json")
    page2 = report.render(paper.TABLE2, ours2, info, smoke=smoke, notes=_table2_notes(params, unet_voc),
                          extra=[("U-Net", unet_voc["seg11valid"])],
                          figures=[("Training loss and validation mean IU", "curves.png"),
                                   ("Image, ground truth, FCN-32s, FCN-16s, FCN-8s (as the paper's Figure 4)",
                                    "figure4.png")])
    page3 = report.render(paper.TABLE3, {"fcn8s": _table3_values(params, first, timing)}, info, smoke=smoke,
                          notes=_table3_notes(params, first, timing))
    paths = [out / "table2.md", out / "table3.md"]
    for path, page in zip(paths, (page2, page3)):
        report.write_text_atomic(path, page)
    return [table1, *paths, table4, table5, *unet_pages, out / "figure4.png", out / "curves.png"]


def _table4(params: Params, metrics_dir: Path, models_dir: Path, smoke: bool, out: Path) -> Path:
    first = EXPERIMENTS[TABLE4_EXPERIMENTS[0]]
    metrics = _read_json(Path(metrics_dir) / f"{first.name}.json")
    if params.data_source == "twin":
        t = params.twin.nyud
        data = (f"synthetic NYUD twin (segcore.data.twin_nyud, seed {t.seed}, {t.n_train} + {t.n_test} rooms at "
                f"x{t.scale:g} of 480 x 640); trained on {first.train_split}, "
                f"{metrics[first.test_split]['images']} {first.test_split} images")
    else:
        data = (f"NYU Depth v2 labeled (795 / 654 split, 40 classes); trained on {first.train_split}, "
                f"{metrics[first.test_split]['images']} {first.test_split} images")
    info = provenance(params, metrics, backbone_sources(models_dir, ("vgg16",)), data,
                      f"{EXPERIMENTS['nyud-rgb'].iterations(params.recipe)} steps per net, {EXPERIMENTS['nyud-rgbhha'].iterations(params.recipe)} "
                      "more for each fusion net")
    return build_table4(params, metrics_dir, _read_json, info, smoke, out)


def _table5(params: Params, metrics_dir: Path, eval_dir: Path, models_dir: Path, smoke: bool, out: Path) -> Path:
    final = EXPERIMENTS[TABLE5_EXPERIMENTS[-1]]
    metrics = _read_json(Path(metrics_dir) / f"{final.name}.json")
    test = f"{metrics[final.test_split]['images']} {final.test_split} images"
    if params.data_source == "twin":
        t = params.twin.siftflow
        data = (f"synthetic SIFT Flow twin (segcore.data.twin_siftflow, seed {t.seed}, {t.n_train} training images "
                f"({t.n_unannotated} unannotated) + {t.n_test} test, {t.size} x {t.size}); {test}")
    else:
        data = f"SIFT Flow (2,488 / 200 split, 2 unannotated training images dropped); {test}"
    r = params.recipe
    info = provenance(params, metrics, backbone_sources(models_dir, ("vgg16",)), data,
                      f"{EXPERIMENTS['sift-fcn32s'].iterations(r)} steps (32s) / {EXPERIMENTS['sift-fcn16s'].iterations(r)} (16s)")
    return build_table5(params, metrics_dir, eval_dir, _read_json, info, smoke, out)


def _unet(params: Params, metrics_dir: Path, eval_dir: Path, smoke: bool, out: Path) -> list[Path]:
    main = EXPERIMENTS[UNET_EXPERIMENTS[0]]
    metrics = _read_json(Path(metrics_dir) / f"{main.name}.json")
    if params.data_source == "twin":
        t = params.twin.isbi
        data = (f"synthetic ISBI 2012 twin (segcore.data.twin_isbi, seed {t.seed}, {t.n_slices} slices of "
                f"{t.size} x {t.size}); {metrics[main.val_split]['slices']} held-out slices")
    else:
        data = f"ISBI 2012 training stack (30 slices); {metrics[main.val_split]['slices']} held-out slices"
    u = params.unet_recipe
    info = provenance(params, metrics, "none: trained from scratch", data, f"{main.iterations(u)} steps")
    info["scale"] = (f"{params.scale_name}: width x{u.width:g}, {main.iterations(u)} steps of {u.batch_size} "
                     f"tile(s), {optimizer_text(u)}")
    return build_unet(params, metrics_dir, eval_dir, _read_json, info, smoke, out)


def _table1(params: Params, metrics_dir: Path, models_dir: Path, timing: dict, smoke: bool, out: Path) -> Path:
    metrics = {n: _read_json(Path(metrics_dir) / f"{n}.json") for n in TABLE1_EXPERIMENTS}
    first = EXPERIMENTS[TABLE1_EXPERIMENTS[0]]
    info = provenance(params, metrics[first.name], backbone_sources(models_dir, tuple(ARCHS)),
                      data_description(params, first.train_split, first.val_split,
                                       metrics[first.name][first.val_split]["images"]),
                      f"{first.iterations(params.recipe)} steps")
    return build_table1(params, metrics, timing, info, smoke, out)


def _table2_notes(params: Params, unet_voc: dict) -> list[str]:
    r, u = params.recipe, params.unet_recipe
    notes = ["Ours: FCN-16s starts from our trained FCN-32s and FCN-8s from our FCN-16s (staged "
             f"training), learning rate x{r.stage_lr_factor:g} per stage; each stage adds "
             f"{EXPERIMENTS['fcn16s'].iterations(r)} steps of training, so part of its gain is the longer training.",
             f"U-Net (beyond the paper, for comparison): the ISBI U-Net with 3 input channels and 21 classes, "
             f"trained from scratch (no ImageNet backbone) on the same data, {EXPERIMENTS['unet-voc'].iterations(u)} steps of "
             f"{u.batch_size} image(s), {optimizer_text(u)}, width x{u.width:g}, "
             "unweighted loss, whole images with mirrored context."]
    if r.optimizer != "sgd":
        notes.append(f"Recipe: {r.optimizer} instead of the paper's SGD (a smoke-scale deviation; "
                     "params.yaml says why).")
    if params.net.learn_upsampling:
        notes.append("Intermediate 2x upsamplings learned from a bilinear start (paper); final one fixed.")
    else:
        notes.append("All upsampling layers fixed bilinear (reference code); the paper learns the 2x ones.")
    return notes


def _table3_values(params: Params, metrics: dict, timing: dict) -> dict:
    test = metrics.get("voc2012_test", {})
    return {"voc2011_test": None, "voc2012_test": test.get("mean_iu"), "inference_ms": timing["mean_ms"]}


def _table3_notes(params: Params, metrics: dict, timing: dict) -> list[str]:
    test = metrics.get("voc2012_test", {})
    notes = []
    if "mean_iu" in test:
        notes.append(f"Ours: the twin's labelled test split ({test['images']} images) in the VOC2012 column; "
                     "the twin has no separate VOC2011 test split.")
    else:
        notes.append(f"Ours: test labels are withheld; {test.get('submitted_images', 0)} predictions are packed "
                     "for the evaluation server in eval/fcn8s/voc2012_test_submission.tar.gz.")
    notes.append(f"Inference time: full-size FCN-8s, one {timing['size']}x{timing['size']} input, "
                 f"{timing['dtype']}, mean of {timing['trials']} trials after {timing['warmup']} warm-up "
                 f"(std {timing['std_ms']:.0f} ms) on {timing['device']}, torch {timing['torch']}. "
                 "The paper measured on a Tesla K40c GPU.")
    return notes


def _figure4(data_root: Path, eval_dir: Path, out: Path) -> None:
    """Rows of image, ground truth and the three nets' predictions for the kept val images."""
    pal = voc.palette()
    ids = sorted(p.stem for p in (Path(eval_dir) / FIGURE_MODELS[-1] / "preds").glob("*.png"))
    samples = {s.id: s for s in voc.split_samples(data_root, "seg11valid")}
    rows = []
    for sample_id in ids:
        image, label = voc.read_sample(samples[sample_id])
        preds = [voc.read_label_png(Path(eval_dir) / m / "preds" / f"{sample_id}.png") for m in FIGURE_MODELS]
        rows.append([figures.Image.fromarray(image), figures.colorize(label, pal),
                     *(figures.colorize(p, pal) for p in preds)])
    figures.comparison_grid(rows, ["image", "ground truth", "FCN-32s", "FCN-16s", "FCN-8s"], out)
