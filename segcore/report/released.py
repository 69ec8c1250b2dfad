"""reports/released.md, and the Tables' "released net, scored here" column: the FCN authors' own nets
scored by this pipeline beside the score their reference states.

What a reader can conclude: on the real data, a released file scored within about 0.1 mean IU of its
published number checks everything but training (data preparation, preprocessing, crops, metrics). On the
twins the files are stand-ins written by the tests in the released layouts, and the page says so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from segcore.models.released import RELEASED, ReleasedNet
from segcore.report import render as report
from segcore.report.context import Context, code_version

# The row of a paper table each released net stands beside (segcore.train.experiments names). The heavy
# files are retrains on SBD (their README), so a row's training differs; the column's note says so.
TABLE_ROW = {"voc-fcn32s": "fcn32s", "voc-fcn16s": "fcn16s", "voc-fcn8s": "fcn8s", "voc-fcn-alexnet": "t1-alexnet",
             "nyud-fcn32s-color": "nyud-rgb", "nyud-fcn32s-hha": "nyud-hha", "nyud-fcn32s-color-hha": "nyud-rgbhha",
             "siftflow-fcn32s": "sift-fcn32s", "siftflow-fcn16s": "sift-fcn16s"}
COLUMN = "released net, scored here"
# Measured by a public PyTorch port that converted the same files (seg11valid mean IU); shown as a second reference.
PORT = {"voc-fcn32s": 63.63, "voc-fcn16s": 65.01, "voc-fcn8s": 65.51, "voc-fcn8s-atonce": 65.40}
NEVER_RELEASED = ("nyud-fcn32s-color-d (RGB-D: a prototxt, no weights)", "FCN-GoogLeNet", "FCN-32s-fixed",
                  "FCN-16s RGB-HHA")


def result(ctx: Context, name: str) -> dict:
    """The stage's results for ``name`` (Context.metrics), with ``selected`` False when the params left it out."""
    record = json.loads((Path(ctx.eval_dir) / f"released-{name}" / "record.json").read_text())
    if record.get("selected") is False:
        return record
    return {**ctx.metrics(f"released-{name}"), "selected": True}


def score(res: dict, net: ReleasedNet, key: str = "mean_iu") -> float | None:
    """The released net's ``key`` on its reference split, None when it was not run."""
    return res.get(net.split, {}).get(key) if res.get("selected") else None


def column(ctx: Context, experiments: tuple[str, ...]) -> dict[str, str]:
    """{experiment: cell} for the rows of a table that have a released counterpart; {} when none has."""
    cells = {}
    for name, row in TABLE_ROW.items():
        if row not in experiments:
            continue
        net, res = RELEASED[name], result(ctx, name)
        value = score(res, net)
        cells[row] = f"{value:.1f} ({name})" if value is not None else f"not run ({name})"
    return cells


def column_note(ctx: Context, cells: dict[str, str]) -> list[str]:
    """The note under a table with the column: what the numbers are, and how to get them."""
    if not cells:
        return []
    source = ctx.params.data_source
    return [f"*{COLUMN}*: mean IU of the FCN authors' released file (in brackets) converted and scored by this "
            "pipeline on the split its reference scores (VOC: seg11valid; NYUD, SIFT Flow: test); the \"heavy\" "
            "files are the authors' later retrains, not the nets of this table, so read it as a check of our "
            "evaluation, not of our training. Every score beside its published one: "
            f"[released.md](released.md). *not run*: add the net to `released.nets.{source}` in params.yaml."]


def _sha(res: dict) -> str:
    released = res.get("released") or {}
    return f"`{released['sha256'][:16]}…`" if released.get("sha256") else "-"


def rows(ctx: Context) -> list[list[str]]:
    """One row per released file: reference, ours, the difference, the other metrics, the file's sha256."""
    out = []
    for name, net in RELEASED.items():
        res = result(ctx, name)
        ours = score(res, net)
        ref = "-" if net.reference is None else f"{net.reference:.1f}"
        gap = "" if ours is None or net.reference is None else f"{ours - net.reference:+.2f}"
        port = f"{PORT[name]:.2f}" if name in PORT else "-"
        others = [score(res, net, k) for k in ("pixel_acc", "mean_acc", "fw_iu")]
        if name.startswith("siftflow"):
            others.append(score(res, net, "geo_acc"))
        cells = [f"{v:.2f}" if v is not None else "-" for v in others]
        images = res.get(net.split, {}).get("images", "-") if res.get("selected") else "-"
        out.append([name, f"`{net.file}`", net.split, ref, port, "not run" if ours is None else f"{ours:.2f}", gap,
                    *cells[:3], cells[3] if len(cells) > 3 else "", str(images), _sha(res)])
    return out


HEADERS = ["net", "file", "split", "mean IU (reference)", "mean IU (PyTorch port)", "mean IU (ours)", "diff.",
           "pixel acc.", "mean acc.", "f.w. IU", "geom. acc.", "images", "sha256"]


def twin_note(ran: int) -> list[str]:
    """What the page means on the twins: nothing scored by default, or stand-in files."""
    if not ran:
        return ["**Twin data: no released file runs on the twins by default** (`released.nets.twin` is empty, so "
                "the smoke run stays offline); the rows show the published scores only. The check itself: "
                "`dvc exp run -S data=real released_report` (docs/released.md)."]
    return ["**Twin data: the files scored here are stand-ins written by the tests in the released layouts from "
            "random weights, at the nets' smoke width; the scores test the converter and the plumbing, not the "
            "authors' nets.** Place the real files in downloads/ and run the real data for the check."]


def notes(ctx: Context) -> list[str]:
    source = ctx.params.data_source
    ran = sum(bool(result(ctx, n).get("selected")) for n in RELEASED)
    return [
        *(twin_note(ran) if source == "twin" else []),
        "Reference: the mean IU the README of the paper's reference repository gives for each file (VOC2011 "
        "seg11valid; FCN-8s also 67.2 on VOC2012 test). None is stated for the NYUD and SIFT Flow files (the "
        "README: SIFT Flow's semantic evaluation \"not quite right\", classes missing); the CVPR tables are not "
        "their reference either, the heavy files being later retrains.",
        "Ours: the same file converted strictly (segcore.models.released: every weighted layer and shape checked, "
        "the upsampling checked to be the fixed bilinear kernel) and scored by the evaluation of our trained nets, "
        "at native resolution, on the split above. diff. = ours - reference, in mean IU points; on the real data "
        "agreement within about 0.1 checks data, preprocessing, crops and metrics end to end.",
        f"Which files run: `released.nets.{source}` in params.yaml; a file is read from downloads/ (placed by hand) "
        "or its published address, and its sha256 pinned in segcore/data/recorded_checksums.json on first use.",
        "Never released, so not scorable here: " + ", ".join(NEVER_RELEASED) + ".",
    ]


def provenance(ctx: Context) -> dict[str, str]:
    """Profile, data, the evaluation device of the first net that ran, code and date."""
    ran = [result(ctx, n) for n in RELEASED]
    first = next((r for r in ran if r.get("selected")), {})
    return {"profile": ctx.params.profile, "data": ctx.params.data_source,
            "nets scored": f"{sum(bool(r.get('selected')) for r in ran)} of {len(RELEASED)}",
            "device (evaluation)": first.get("device", "-"), "torch": first.get("torch", "-"),
            "code": code_version(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


@dataclass(frozen=True)
class PageParams:
    """What the page reads from params (segcore.pipeline.views.released_report), named as in ReportParams."""

    profile: str
    data_source: str
    scale_name: str


def page_params(view: dict) -> PageParams:
    return PageParams(view["profile"], view["data_source"], view["scale_name"])


def build_page(params: PageParams, metrics_dir: Path, eval_dir: Path, out: Path) -> Path:
    """Write ``out`` (reports/released.md) from metrics/released-<net>.json and eval/released-<net>/."""
    # The page reads no data and no model folder: those Context fields stay unused.
    return build(Context(params, Path(), Path(metrics_dir), Path(eval_dir), Path()), Path(out))[0]


def build(ctx: Context, out: Path) -> list[Path]:
    """Write ``out`` (reports/released.md)."""
    parts = ["# The FCN authors' released nets, scored here", "",
             "<!-- Generated by `dvc repro` (stage `released_report`); do not edit by hand. -->", ""]
    if ctx.smoke:
        parts += [f"> {report.SMOKE_WARNING}", ""]
    parts += [tabulate(rows(ctx), headers=HEADERS, tablefmt="github", disable_numparse=True), "",
              "Units: every score in percent.", ""]
    parts += [f"- {n}" for n in notes(ctx)]
    parts += ["", "## Provenance", "", report.provenance_block(provenance(ctx)), ""]
    report.write_text_atomic(out, "\n".join(parts))
    return [out]
