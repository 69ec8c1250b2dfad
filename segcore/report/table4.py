"""reports/table4.md: the paper's Table 4 (NYUDv2) beside ours, scored on the test split."""

from __future__ import annotations

from pathlib import Path

from segcore.report import paper
from segcore.report import released as released_page
from segcore.report import render as report
from segcore.report.context import Context, backbone_sources, data_line, family_curves, provenance
from segcore.train.experiments import EXPERIMENTS

TABLE4_EXPERIMENTS = tuple(row.experiment for row in paper.TABLE4.rows if row.experiment)


def table4_notes(params, metrics: dict) -> list[str]:
    """How our rows were produced."""
    first = EXPERIMENTS[TABLE4_EXPERIMENTS[0]]
    m = metrics[first.name]
    r = params.recipe
    fusion, fusion16 = EXPERIMENTS["nyud-rgbhha"], EXPERIMENTS["nyud-rgbhha16s"]
    return [
        f"Ours: trained on the `{first.train_split}` part of the training frames, validated on `{first.val_split}` "
        f"({m[first.val_split]['images']} frames), scored on `{first.test_split}` ({m[first.test_split]['images']} "
        f"frames). RGB, RGBD and HHA nets: {EXPERIMENTS['nyud-rgb'].iterations(r)} steps from the backbone; RGB-HHA starts from our "
        f"trained RGB and HHA nets ({fusion.iterations(r)} more steps), FCN-16s RGB-HHA from our FCN-32s RGB-HHA "
        f"({fusion16.iterations(r)} more steps, learning rate x{r.stage_lr_factor:g}): part of each fused net's "
        "gain is its longer training.",
        "RGBD: log(depth in mm) - 7.844 as a 4th channel, whose conv1_1 filters start as the mean of the RGB "
        "filters. HHA: our segcore/hha.py encoding (identical to the MATLAB code on the golden frame), "
        "normalised on the RGB net's input scale with the mean of the training frames. RGB-HHA: predictions "
        "summed 0.5 / 0.5, which with fixed upsampling equals the reference's sum of score maps before one "
        "upsampling.",
        "Gupta et al. is a reference row (another method), printed as published.",
    ]


def build_table4(params, metrics_of, info: dict[str, str], smoke: bool, out: Path, curves: Path | None = None,
                 released: dict[str, str] | None = None, released_notes: list[str] = ()) -> Path:
    """Write ``out`` (reports/table4.md) from each NYUD net's results (``metrics_of``: Context.metrics);
    ``released``: the released nets' column and ``released_notes`` its note (segcore.report.released)."""
    metrics = {n: metrics_of(n) for n in TABLE4_EXPERIMENTS}
    ours = {n: m[EXPERIMENTS[n].test_split] for n, m in metrics.items()}
    first = EXPERIMENTS[TABLE4_EXPERIMENTS[0]]
    scored = f"{metrics[first.name][first.test_split]['images']} {first.test_split} images"
    page = report.render(paper.TABLE4, ours, info, smoke=smoke, notes=[*table4_notes(params, metrics), *released_notes],
                         scored=scored, side=(released_page.COLUMN, released) if released else None,
                         figures=[("NYUD nets: training loss and validation mean IU", curves.name)] if curves else [])
    report.write_text_atomic(out, page)
    return out


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/table4.md), its header from the first NYUD experiment's metrics."""
    first = EXPERIMENTS[TABLE4_EXPERIMENTS[0]]
    metrics = ctx.metrics(first.name)
    r = ctx.params.recipe
    schedule = (f"{EXPERIMENTS['nyud-rgb'].iterations(r)} steps per net, "
                f"{EXPERIMENTS['nyud-rgbhha'].iterations(r)} more for each fusion net")
    info = provenance(ctx.params, metrics, backbone_sources(ctx.models_dir, ("vgg16",)),
                      data_line(ctx.params, first, metrics, first.test_split), schedule)
    curves = family_curves(ctx, TABLE4_EXPERIMENTS, out.with_name("curves-table4.png"))
    released = released_page.column(ctx, TABLE4_EXPERIMENTS)
    return [build_table4(ctx.params, ctx.metrics, info, ctx.smoke, out, curves, released,
                         released_page.column_note(ctx, released)), curves]
