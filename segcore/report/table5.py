"""reports/table5.md: the paper's Table 5 (SIFT Flow) beside our two-headed FCN-16s, on the test split."""

from __future__ import annotations

from pathlib import Path

from segcore.report import paper
from segcore.report import released as released_page
from segcore.report import render as report
from segcore.report.context import Context, backbone_sources, data_line, family_curves, provenance, read_json
from segcore.train.experiments import EXPERIMENTS

TABLE5_EXPERIMENTS = ("sift-fcn32s", "sift-fcn16s")  # the 32s is the 16s's first stage, reported in a note


def table5_notes(params, metrics: dict, per_class: dict) -> list[str]:
    """How our rows were produced, the 32s stage's scores, and which classes the means left out."""
    e32, e16 = (EXPERIMENTS[n] for n in TABLE5_EXPERIMENTS)
    r = params.recipe
    m32, m16 = (metrics[e.name][e.test_split] for e in (e32, e16))
    absent = per_class.get("absent_from_ground_truth", [])
    return [
        f"Ours: one VGG16 trunk with a semantic and a geometric head (score and upsampling layers each), the two "
        f"pixel losses summed. FCN-32s trained {e32.iterations(r)} steps from the backbone on the `{e32.train_split}` "
        f"part of the annotated training images (validated on `{e32.val_split}`), then FCN-16s "
        f"{e16.iterations(r)} more steps from it at learning rate x{r.stage_lr_factor:g}.",
        f"Our FCN-32s (first stage) on `{e32.test_split}`: pixel acc. {m32['pixel_acc']:.1f}, mean acc. "
        f"{m32['mean_acc']:.1f}, mean IU {m32['mean_iu']:.1f}, f.w. IU {m32['fw_iu']:.1f}, geom. acc. "
        f"{m32['geo_acc']:.1f}.",
        f"Means over the {m16['classes_scored']} classes present in our test ground truth; left out, as found "
        f"from the confusion matrix: {', '.join(absent) if absent else 'none'}.",
        "The other rows are reference methods, printed as published.",
    ]


def build_table5(params, metrics_of, eval_dir: Path, info: dict[str, str], smoke: bool, out: Path,
                 curves: Path | None = None, released: dict[str, str] | None = None,
                 released_notes: list[str] = ()) -> Path:
    """Write ``out`` (reports/table5.md) from the SIFT Flow nets' results (``metrics_of``: Context.metrics)
    and the 16s's per-class file."""
    metrics = {n: metrics_of(n) for n in TABLE5_EXPERIMENTS}
    final = EXPERIMENTS[TABLE5_EXPERIMENTS[-1]]
    per_class = read_json(Path(eval_dir) / final.name / "per_class_iu.json")[final.test_split]
    ours = {final.name: metrics[final.name][final.test_split]}
    scored = f"{ours[final.name]['images']} {final.test_split} images"
    page = report.render(paper.TABLE5, ours, info, smoke=smoke,
                         notes=[*table5_notes(params, metrics, per_class), *released_notes], scored=scored,
                         side=(released_page.COLUMN, released) if released else None,
                         figures=[("SIFT Flow nets: training loss and validation mean IU (semantic head)", curves.name)]
                         if curves else [])
    report.write_text_atomic(out, page)
    return out


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/table5.md), its header from the final (16s) net's metrics."""
    final = EXPERIMENTS[TABLE5_EXPERIMENTS[-1]]
    metrics = ctx.metrics(final.name)
    r = ctx.params.recipe
    schedule = (f"{EXPERIMENTS['sift-fcn32s'].iterations(r)} steps (32s) / "
                f"{EXPERIMENTS['sift-fcn16s'].iterations(r)} (16s)")
    info = provenance(ctx.params, metrics, backbone_sources(ctx.models_dir, ("vgg16",)),
                      data_line(ctx.params, final, metrics, final.test_split), schedule)
    curves = family_curves(ctx, TABLE5_EXPERIMENTS, out.with_name("curves-table5.png"))
    released = released_page.column(ctx, TABLE5_EXPERIMENTS)
    return [build_table5(ctx.params, ctx.metrics, ctx.eval_dir, info, ctx.smoke, out, curves, released,
                         released_page.column_note(ctx, released)), curves]
