"""reports/table1.md: the paper's Table 1 beside ours.

Mean IU comes from the trained Table 1 experiments (scaled nets in the smoke profile); forward
times from the timing stage; the architecture figures (parameter layers, parameters, receptive
field, stride, FLOPs) are measured here on the full-size nets we build (segcore.report.archfig), so they
describe the same modules the pipeline trains, never typed-in values.
"""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from segcore.report import paper
from segcore.report import released as released_page
from segcore.report import render as report
from segcore.report.archfig import ArchFigures, figures
from segcore.report.context import Context, backbone_sources, data_line, family_curves, provenance
from segcore.data import voc
from segcore.train.experiments import EXPERIMENTS
from segcore.models.backbone import ARCHS
from segcore.models.registry import build_model

N_CLASSES = len(voc.CLASSES)
TABLE1_EXPERIMENTS = tuple(row.experiment for row in paper.TABLE1.rows)

# What our Table 1 nets are where the paper's table does not say, and why their figures may differ.
ARCH_FOOTNOTES = {
    "t1-alexnet": (
        "built on the paper's AlexNet, Caffe's CaffeNet: 96 conv1 filters, LRN after pool1 and pool2, "
        "conv2/conv4/conv5 in two groups, as the reference voc-fcn-alexnet; "
        "the paper profile starts from BVLC's bvlc_reference_caffenet weights."
    ),
    "t1-googlenet": (
        "built on torchvision's GoogLeNet, not the 2014 Caffe net: every conv has batch "
        "norm, the \"5x5\" inception branches use 3x3 kernels and pool4 is 2x2 instead of 3x3 (hence "
        "fewer parameters and a smaller receptive field). For the Caffe net, the same arithmetic gives "
        "715 at inception5b, and 907 (the paper's figure) once the 7x7 average pooling that FCN-GoogLeNet "
        "drops is counted: 715 + 6 x 32 (tests/test_archfig.py checks both)."
    ),
}


def architecture(name: str, size: int) -> ArchFigures:
    """Table 1 figures of experiment ``name``'s full-size net (21 classes) on a size x size input."""
    return figures(build_model(EXPERIMENTS[name].arch, n_classes=N_CLASSES, width=1.0), size)


def table1_values(metrics: dict, timing: dict, arch: ArchFigures, val_split: str) -> dict:
    """One row of ours: mean IU (percent), forward time (ms) and the architecture figures."""
    return {"mean_iu": metrics[val_split]["mean_iu"], "forward_ms": timing["mean_ms"], "layers": arch.layers,
            "params": arch.params, "rf": arch.rf, "stride": arch.stride, **report.one_class(metrics[val_split])}


def beyond_the_paper(timing: dict, archs: dict[str, ArchFigures]) -> str:
    """Markdown: FLOPs per forward pass, throughput reached, and every timed precision variant."""
    rows = []
    for name, arch in archs.items():
        model = EXPERIMENTS[name].arch
        for key in sorted(k for k in timing if k == model or k.startswith(f"{model}_")):
            t = timing[key]
            variant = "fp32" if key == model else key.removeprefix(f"{model}_")
            tflops = arch.gflops / t["mean_ms"]  # GFLOP per ms = TFLOP/s
            rows.append([EXPERIMENTS[name].label, f"{arch.gflops:.1f}", variant, report.trials_text(t), f"{tflops:.2f}"])
    table = tabulate(rows, headers=["model", "GFLOPs per 500x500 pass", "precision", "forward time (ms)",
                                           "TFLOP/s reached"], tablefmt="github", disable_numparse=True)
    return ("### Beyond the paper: compute per forward pass\n\n"
            "FLOPs = 2 x multiply-accumulates of the conv, transposed-conv and linear layers (segcore/archfig.py). "
            "The paper's Tesla K40c peaks at about 4.3 TFLOP/s in fp32.\n\n" + table)


def first_stage_lr(params, backbone: str) -> float:
    """A first-stage net's learning rate on ``backbone``: ``lr`` x the scale's lr_multiplier x its net_lr_scale.

    The same product as segcore.config.params.Params.base_lr(0, backbone), from the attributes a report reads.
    """
    recipe = params.recipe
    return params.lr * recipe.lr_multiplier * recipe.net_lr_scale[backbone]


def table1_notes(params, metrics: dict, timing: dict, val_split: str) -> list[str]:
    """How our row was produced, and why it can differ."""
    recipe = params.recipe
    any_metrics = metrics[TABLE1_EXPERIMENTS[0]]
    lrs = ", ".join(f"{EXPERIMENTS[n].label} {first_stage_lr(params, EXPERIMENTS[n].backbone):g}"
                    for n in TABLE1_EXPERIMENTS)
    first_timing = timing[EXPERIMENTS[TABLE1_EXPERIMENTS[0]].arch]
    notes = [
        f"Ours, mean IU: trained {EXPERIMENTS['t1-vgg16'].iterations(recipe)} steps of {recipe.batch_size} images on VOC2011 "
        f"train only (no SBD), one fixed learning rate per net ({lrs}; `lr` x {recipe.lr_multiplier:g} x "
        f"the net's `net_lr_scale`), scored on all {any_metrics[val_split]['images']} {val_split} images.",
        "FCN-VGG16 here is its own training run on VOC2011 train; Table 2's FCN-32s is trained on SBD.",
        f"Forward time: full-size nets, one {first_timing['size']}x{first_timing['size']} input, "
        f"{first_timing['dtype']}, {report.trials_phrase(first_timing)} after {first_timing['warmup']} "
        f"warm-up, measured on {first_timing['device']} with torch {first_timing['torch']}; the paper's "
        "figures are from a Tesla K40c GPU.",
        "Layers, parameters, rf size and stride: computed from the full-size modules this pipeline builds "
        "(21 classes, learnable parameters only; counting rules in segcore/archfig.py), whatever the profile.",
    ]
    if params.scale_name == "smoke":
        notes.append(f"Smoke scale: mean IU comes from nets at width x{params.width:g} on synthetic data; "
                     "the other columns describe the full-size nets.")
    return notes + [f"{EXPERIMENTS[n].label}: {text}" for n, text in ARCH_FOOTNOTES.items()]


def build_table1(params, metrics: dict, timing: dict, info: dict[str, str], smoke: bool, out: Path,
                 curves: Path | None = None, released: dict[str, str] | None = None,
                 released_notes: list[str] = ()) -> Path:
    """Write ``out`` (reports/table1.md) from the Table 1 metrics and the timing stage's figures.

    ``released``: {experiment: cell} of the released nets' column (segcore.report.released.column), and
    ``released_notes`` its note."""
    size = timing[EXPERIMENTS[TABLE1_EXPERIMENTS[0]].arch]["size"]
    archs = {n: architecture(n, size) for n in TABLE1_EXPERIMENTS}
    ours = {n: table1_values(metrics[n], timing[EXPERIMENTS[n].arch], archs[n], EXPERIMENTS[n].val_split)
            for n in TABLE1_EXPERIMENTS}
    first = EXPERIMENTS[TABLE1_EXPERIMENTS[0]]
    # Two tables: what was trained and timed, then what the full-size nets are (19 columns in one was unreadable).
    arch_block = (f"### {paper.TABLE1_ARCH.title}\n\n"  # the full-size nets: no "predicts one class" marks
                  + report.table_block(paper.TABLE1_ARCH, ours, smoke=smoke, flag=False))
    side = (released_page.COLUMN, released) if released else None
    page = report.render(paper.TABLE1, ours, info, smoke=smoke, side=side,
                         notes=[*table1_notes(params, metrics, timing, first.val_split), *released_notes],
                         scored=f"{metrics[first.name][first.val_split]['images']} {first.val_split} images",
                         after_table=[arch_block], sections=[beyond_the_paper(timing, archs)],
                         figures=[("Table 1 nets: training loss and validation mean IU", curves.name)] if curves else [])
    report.write_text_atomic(out, page)
    return out


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/table1.md) from metrics/t1-*.json and metrics/timing.json."""
    metrics = {n: ctx.metrics(n) for n in TABLE1_EXPERIMENTS}
    first = EXPERIMENTS[TABLE1_EXPERIMENTS[0]]
    info = provenance(ctx.params, metrics[first.name], backbone_sources(ctx.models_dir, tuple(ARCHS)),
                      data_line(ctx.params, first, metrics[first.name], first.val_split),
                      f"{first.iterations(ctx.params.recipe)} steps")
    curves = family_curves(ctx, TABLE1_EXPERIMENTS, out.with_name("curves-table1.png"))
    released = released_page.column(ctx, TABLE1_EXPERIMENTS)
    return [build_table1(ctx.params, metrics, ctx.metrics("timing"), info, ctx.smoke, out, curves, released,
                         released_page.column_note(ctx, released)), curves]
