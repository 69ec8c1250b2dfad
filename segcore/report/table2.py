"""reports/table2.md, curves-table2.png and figure4.png: the paper's Table 2 (FCN-32s, 16s, 8s on VOC2011
seg11valid) beside ours, with the training curves and the paper's Figure 4."""

from __future__ import annotations

from pathlib import Path

from segcore.data import voc
from segcore.report import figures
from segcore.report import paper
from segcore.report import released as released_page
from segcore.report import render as report
from segcore.report.context import Context, backbone_sources, data_line, family_curves, provenance
from segcore.report.table_unet import optimizer_text
from segcore.train.experiments import EXPERIMENTS

TABLE2_EXPERIMENTS = tuple(row.experiment for row in paper.TABLE2.rows if row.experiment)
FIGURE_MODELS = ("fcn32s", "fcn16s", "fcn8s")  # Figure 4's columns after image and ground truth


def voc_header(ctx: Context) -> dict[str, str]:
    """The header of Tables 2 and 3: FCN-8s, trained on SBD train (as 32s, 16s, 8s) and scored on seg11valid."""
    final = EXPERIMENTS[FIGURE_MODELS[-1]]
    metrics = ctx.metrics(final.name)
    r = ctx.params.recipe
    schedule = f"{EXPERIMENTS['fcn32s'].iterations(r)} steps (32s) / {EXPERIMENTS['fcn16s'].iterations(r)} (16s, 8s)"
    return provenance(ctx.params, metrics, backbone_sources(ctx.models_dir, ("vgg16",)),
                      data_line(ctx.params, final, metrics, final.val_split), schedule)


def table2_notes(params, unet_voc: dict) -> list[str]:
    """How our rows were produced: staged training, the U-Net row, recipe and upsampling."""
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


def figure4(data_root: Path, eval_dir: Path, out: Path) -> None:
    """Rows of image, ground truth and the three nets' predictions for the kept val images."""
    pal = voc.palette()
    ids = sorted(p.stem for p in (Path(eval_dir) / FIGURE_MODELS[-1] / "preds").glob("*.png"))
    samples = {s.id: s for s in voc.split_samples(data_root, "seg11valid")}
    rows, labels = [], []
    for sample_id in ids:
        image, label = voc.read_sample(samples[sample_id])
        preds = [voc.read_label_png(Path(eval_dir) / m / "preds" / f"{sample_id}.png") for m in FIGURE_MODELS]
        rows.append([figures.Image.fromarray(image), figures.colorize(label, pal),
                     *(figures.colorize(p, pal) for p in preds)])
        labels += [label, *preds]
    figures.comparison_grid(rows, ["image", "ground truth", "FCN-32s", "FCN-16s", "FCN-8s"], out,
                            legend=figures.classes_present(labels, list(voc.CLASSES), pal))


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/table2.md), figure4.png and curves-table2.png beside it; returns the three paths."""
    metrics = {name: ctx.metrics(name) for name in TABLE2_EXPERIMENTS}
    curves, fig4 = out.with_name("curves-table2.png"), out.with_name("figure4.png")
    family_curves(ctx, (*TABLE2_EXPERIMENTS, "unet-voc"), curves)
    figure4(ctx.data_root, ctx.eval_dir, fig4)
    ours = {n: m[EXPERIMENTS[n].val_split] for n, m in metrics.items()}
    unet = EXPERIMENTS["unet-voc"]
    unet_voc = ctx.metrics(unet.name)
    first = EXPERIMENTS[TABLE2_EXPERIMENTS[0]]
    released = released_page.column(ctx, TABLE2_EXPERIMENTS)
    page = report.render(paper.TABLE2, ours, voc_header(ctx), smoke=ctx.smoke,
                         scored=f"{ours[first.name]['images']} {first.val_split} images",
                         side=(released_page.COLUMN, released) if released else None,
                         notes=[*table2_notes(ctx.params, unet_voc), *released_page.column_note(ctx, released)],
                         extra=[(unet.label, unet_voc[unet.val_split])],
                         figures=[("Table 2 nets and U-Net on VOC: training loss and validation mean IU", curves.name),
                                  ("Image, ground truth, FCN-32s, FCN-16s, FCN-8s (as the paper's Figure 4)",
                                   fig4.name)])
    report.write_text_atomic(out, page)
    return [out, fig4, curves]
