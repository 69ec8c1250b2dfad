"""reports/table3.md: the paper's Table 3 (FCN-8s on the VOC test sets, inference time) beside ours."""

from __future__ import annotations

from pathlib import Path

from segcore.report import paper
from segcore.report import render as report
from segcore.report.context import Context
from segcore.report.table2 import voc_header
from segcore.train.experiments import EXPERIMENTS

TABLE3_EXPERIMENT = next(row.experiment for row in paper.TABLE3.rows if row.experiment)  # FCN-8s


def table3_values(metrics: dict, timing: dict) -> dict:
    """Our row: VOC2012 test mean IU (when the labels are there: the twin's) and the forward time."""
    test = metrics.get("voc2012_test", {})
    return {"voc2011_test": None, "voc2012_test": test.get("mean_iu"), "inference_ms": timing["mean_ms"]}


def table3_notes(metrics: dict, timing: dict) -> list[str]:
    """Which test split our row is scored on, and how the inference time was measured."""
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


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/table3.md) from metrics/fcn8s.json and the timing stage's figures."""
    metrics = ctx.metrics(TABLE3_EXPERIMENT)
    timing = ctx.metrics("timing")[EXPERIMENTS[TABLE3_EXPERIMENT].arch]  # timed per architecture
    page = report.render(paper.TABLE3, {TABLE3_EXPERIMENT: table3_values(metrics, timing)}, voc_header(ctx),
                         smoke=ctx.smoke, notes=table3_notes(metrics, timing))
    report.write_text_atomic(out, page)
    return [out]
