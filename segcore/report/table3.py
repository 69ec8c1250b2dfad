"""reports/table3.md: the paper's Table 3 (FCN-8s on the VOC test sets, inference time) beside ours."""

from __future__ import annotations

from pathlib import Path

from segcore.data import voc
from segcore.report import paper
from segcore.report import render as report
from segcore.report.context import Context
from segcore.report.table2 import voc_header
from segcore.train.experiments import EXPERIMENTS

TABLE3_EXPERIMENT = next(row.experiment for row in paper.TABLE3.rows if row.experiment)  # FCN-8s


def table3_values(metrics: dict, timing: dict) -> dict:
    """Our row: mean IU per VOC test split where labels are there (the twin's) and the forward time."""
    tests = {split: metrics.get(split, {}).get("mean_iu") for split in voc.TEST_YEARS}
    return {**tests, "inference_ms": timing["mean_ms"], **report.one_class(*(metrics.get(s) for s in voc.TEST_YEARS))}


def column_note(split: str, test: dict | None) -> str:
    """What our number in one VOC test column is: the twin's labelled split, a server archive, or absent."""
    year = voc.TEST_YEARS[split]
    archive = f"eval/{TABLE3_EXPERIMENT}/{split}_submission.tar.gz"
    if test is None:
        return (f"Ours, VOC{year} test: its images are not in data/voc (VOC{year}/ImageSets/Segmentation/test.txt "
                f"and the JPEGs it lists), so no {archive} is written. They come in {voc.VOC2011_TEST_TAR} from "
                "the PASCAL evaluation server (login needed): place it in downloads/ and rerun "
                "`dvc repro -f download@voc`.")
    if "mean_iu" in test:
        return (f"Ours, VOC{year} test column: measured on the synthetic twin's labelled VOC{year} test split "
                f"({test['images']} images), not on the evaluation server"
                + (f"; the server archive a real run submits is written all the same ({archive})."
                   if "submitted_images" in test else "."))
    return (f"Ours, VOC{year} test: labels are withheld; {test.get('submitted_images', 0)} predictions are packed "
            f"in {archive}: submit the archive to the PASCAL evaluation server for this column.")


def table3_notes(metrics: dict, timing: dict) -> list[str]:
    """Which test split each of our columns is scored on, and how the inference time was measured."""
    notes = [column_note(split, metrics.get(split)) for split in voc.TEST_YEARS]
    notes.append(f"Inference time: full-size FCN-8s, one {timing['size']}x{timing['size']} input, "
                 f"{timing['dtype']}, {report.trials_phrase(timing)} after {timing['warmup']} warm-up"
                 + (f" (std {timing['std_ms']:.0f} ms)" if timing["trials"] > 1 else "")
                 + f" on {timing['device']}, torch {timing['torch']}. "
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
