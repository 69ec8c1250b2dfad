"""reports/unet.md and unet.png: U-Net's ISBI 2012 table beside ours, the border-weight ablation,
and a figure of image, ground truth, weight map and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segcore.report import figures
from segcore.report import paper
from segcore.report import render as report
from segcore.report.context import Context, data_line, family_curves, provenance
from segcore.train.experiments import EXPERIMENTS

UNET_EXPERIMENTS = ("unet-isbi", "unet-isbi-noborder")


def optimizer_text(u) -> str:
    """'sgd, lr 0.01, momentum 0.99' or 'adam, lr 0.001' (Adam has no momentum setting here)."""
    momentum = f", momentum {u.momentum:g}" if u.optimizer == "sgd" else ""
    return f"{u.optimizer}, lr {u.lr:g}{momentum}"


def unet_notes(params, metrics: dict) -> list[str]:
    """How our rows were produced, and what the ablation shows."""
    main, ablation = (EXPERIMENTS[n] for n in UNET_EXPERIMENTS)
    u = params.unet_recipe
    held = metrics[main.name][main.val_split]
    with_b, without = held, metrics[ablation.name][ablation.val_split]
    return [
        f"Ours: scored on the held-out training slices {held['heldout_slices']} ({held['slices']} slices; the "
        "challenge's test labels are secret), by the same rules: 4-connected cells above each of 10 "
        "thresholds, the best threshold per error; Rand error on the foreground-restricted Rand index; "
        "warping error counting split and merge pixels (segcore/eval/isbi_scores.py). Predictions by overlap-tile "
        f"inference with mirrored context ({u.eval_tile} px output tiles); no rotation averaging.",
        f"Training: {main.iterations(u)} steps of {u.batch_size} augmented slice(s) (elastic deformation on a "
        f"3x3 grid with 10 px standard deviation, shift, rotation, grey values), {optimizer_text(u)}, "
        f"width x{u.width:g}; loss weighted by w = w_c + 10 exp(-(d1 + d2)^2 / 50), "
        "w_c = inverse class frequency (the more frequent class 1).",
        f"Ablation, the same net and schedule with w = w_c only: Rand error {without['rand_error']:.3g} against "
        f"{with_b['rand_error']:.3g} with the border weights; warping error {without['warping_error']:.3g} "
        f"against {with_b['warping_error']:.3g}.",
        "The other rows are challenge entries and the human annotators, printed as published.",
    ]


def unet_figure(eval_dir: Path, out: Path) -> None:
    """Image, ground truth, weight map and predicted cell probability of the first held-out slice."""
    data = np.load(Path(eval_dir) / "figure.npz")
    figures.panels_with_colorbar([("image", data["image"], "gray"), ("ground truth", data["label"], "gray"),
                                  ("loss weight w(x)", data["weight"], "viridis"),
                                  ("predicted cell probability", data["prob"], "gray")],
                                 colorbar="loss weight w(x)", out=out)


def build_unet(params, metrics_of, eval_dir: Path, info: dict[str, str], smoke: bool, out: Path,
               curves: Path | None = None) -> list[Path]:
    """Write ``out`` (reports/unet.md) and unet.png beside it (``metrics_of``: Context.metrics)."""
    metrics = {n: metrics_of(n) for n in UNET_EXPERIMENTS}
    ours = {n: m[EXPERIMENTS[n].val_split] for n, m in metrics.items()}
    ablation = EXPERIMENTS[UNET_EXPERIMENTS[1]]
    figure = Path(out).with_suffix(".png")
    unet_figure(Path(eval_dir) / UNET_EXPERIMENTS[0], figure)
    page = report.render(paper.TABLE_UNET, ours, info, smoke=smoke, notes=unet_notes(params, metrics),
                         extra=[(f"{ablation.label} (ours, ablation)", ours[ablation.name])],
                         figures=[("Held-out slice: image, ground truth, weight map, predicted cell probability",
                                   figure.name),
                                  *([("U-Net on ISBI: training loss and validation mean IU", curves.name)]
                                    if curves else [])])
    report.write_text_atomic(out, page)
    return [Path(out), figure, *([curves] if curves else [])]


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/unet.md) and unet.png; the header's scale is U-Net's recipe, not the FCNs'."""
    main = EXPERIMENTS[UNET_EXPERIMENTS[0]]
    metrics = ctx.metrics(main.name)
    u = ctx.params.unet_recipe
    data = data_line(ctx.params, main, metrics, main.val_split)
    info = provenance(ctx.params, metrics, "none: trained from scratch", data, f"{main.iterations(u)} steps")
    info["scale"] = (f"{ctx.params.scale_name}: width x{u.width:g}, {main.iterations(u)} steps of {u.batch_size} "
                     f"tile(s), {optimizer_text(u)}")
    curves = family_curves(ctx, UNET_EXPERIMENTS, out.with_name("curves-unet.png"))
    return build_unet(ctx.params, ctx.metrics, ctx.eval_dir, info, ctx.smoke, out, curves)
