"""reports/claims.md: the papers' qualitative findings, each checked on this run's numbers.

A smoke number is never a reproduction of a paper's number, but an ordering can be: "each skip
helps", "HHA alone is below RGB". CLAIMS lists the findings the pipeline's nets can test, the
metrics each rests on, and the comparison that decides it. A claim whose inputs are missing (a
metrics file not written, a split not scored) is reported as such, never as held or failed.
``expected`` marks the claims the smoke profile is tuned to reproduce; the others are reported
either way (the twins' small objects work against them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from segcore.report import render as report
from segcore.report.results import ONE_CLASS

# Within this many points of mean IU, FCN-8s's test score counts as "within a few points" of its
# validation score (paper Table 3 vs Table 2: 62.2 on VOC2012 test, 62.7 on seg11valid).
FEW_POINTS = 5.0
# "Far above chance" for SIFT Flow's 3 geometric classes: at least twice a uniform guess (33.3%).
GEO_CHANCE = 100 / 3


@dataclass(frozen=True)
class Input:
    """One number a claim rests on: metric ``metric`` of ``experiment`` on ``split``, shown as ``label``."""

    label: str
    experiment: str
    split: str
    metric: str = "mean_iu"


@dataclass(frozen=True)
class Claim:
    key: str
    source: str                                  # where the paper states it
    finding: str                                 # the finding, in words
    inputs: tuple[Input, ...]
    test: Callable[[Mapping[str, float]], bool]  # on {label: value}
    expected: bool = True                        # the smoke profile is tuned to reproduce it


def _increasing(*labels: str) -> Callable[[Mapping[str, float]], bool]:
    return lambda v: all(v[a] < v[b] for a, b in zip(labels, labels[1:]))


CLAIMS: tuple[Claim, ...] = (
    Claim("t2-all-layers", "FCN Table 2", "training all layers beats the score layer alone (FCN-32s > FCN-32s-fixed)",
          (Input("32s-fixed", "fcn32s-fixed", "seg11valid"), Input("32s", "fcn32s", "seg11valid")),
          _increasing("32s-fixed", "32s")),
    Claim("t2-skips", "FCN Table 2", "each skip helps: FCN-32s < FCN-16s < FCN-8s",
          (Input("32s", "fcn32s", "seg11valid"), Input("16s", "fcn16s", "seg11valid"),
           Input("8s", "fcn8s", "seg11valid")),
          _increasing("32s", "16s", "8s")),
    Claim("t2-diminishing", "FCN Sec. 4.2", "the second skip gains less than the first (8s - 16s < 16s - 32s)",
          (Input("32s", "fcn32s", "seg11valid"), Input("16s", "fcn16s", "seg11valid"),
           Input("8s", "fcn8s", "seg11valid")),
          lambda v: v["8s"] - v["16s"] < v["16s"] - v["32s"], expected=False),
    Claim("t1-vgg-best", "FCN Table 1", "FCN-VGG16 has the best mean IU of the three classifier nets",
          (Input("AlexNet", "t1-alexnet", "voc2011_val"), Input("VGG16", "t1-vgg16", "voc2011_val"),
           Input("GoogLeNet", "t1-googlenet", "voc2011_val")),
          lambda v: v["VGG16"] > max(v["AlexNet"], v["GoogLeNet"]), expected=False),
    Claim("t3-test-near-val", "FCN Table 3",
          f"FCN-8s on the test split is within {FEW_POINTS:g} points of its validation score",
          (Input("val", "fcn8s", "seg11valid"), Input("test", "fcn8s", "voc2012_test")),
          lambda v: abs(v["test"] - v["val"]) <= FEW_POINTS, expected=False),
    Claim("t4-hha-below-rgb", "FCN Table 4", "HHA alone is below RGB",
          (Input("HHA", "nyud-hha", "test"), Input("RGB", "nyud-rgb", "test")),
          _increasing("HHA", "RGB")),
    Claim("t4-fusion-beats-rgb", "FCN Table 4", "RGB-HHA late fusion beats RGB",
          (Input("RGB", "nyud-rgb", "test"), Input("RGB-HHA", "nyud-rgbhha", "test")),
          _increasing("RGB", "RGB-HHA")),
    Claim("t4-16s-fusion-best", "FCN Table 4", "FCN-16s RGB-HHA is the best NYUD net",
          (Input("RGB", "nyud-rgb", "test"), Input("RGBD", "nyud-rgbd", "test"), Input("HHA", "nyud-hha", "test"),
           Input("RGB-HHA", "nyud-rgbhha", "test"), Input("16s RGB-HHA", "nyud-rgbhha16s", "test")),
          lambda v: v["16s RGB-HHA"] > max(x for k, x in v.items() if k != "16s RGB-HHA")),
    Claim("t5-16s-beats-32s", "FCN Table 5", "FCN-16s beats FCN-32s on semantic mean IU",
          (Input("32s", "sift-fcn32s", "test"), Input("16s", "sift-fcn16s", "test")),
          _increasing("32s", "16s")),
    Claim("t5-geometry", "FCN Table 5",
          f"geometric accuracy is far above chance (at least twice a uniform guess, {2 * GEO_CHANCE:.1f}%)",
          (Input("16s geom. acc.", "sift-fcn16s", "test", "geo_acc"),),
          lambda v: v["16s geom. acc."] >= 2 * GEO_CHANCE),
    Claim("unet-border-weights", "U-Net Sec. 3",
          "the border-weighted loss gives a lower Rand error than the same net without it",
          (Input("with", "unet-isbi", "heldout", "rand_error"), Input("without", "unet-isbi-noborder", "heldout",
                                                                      "rand_error")),
          lambda v: v["with"] < v["without"]),
)


def experiments() -> list[str]:
    """Every experiment whose scores some claim rests on."""
    return sorted({i.experiment for c in CLAIMS for i in c.inputs})


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    values: dict[str, float]   # {label: value} of the inputs found
    missing: tuple[str, ...]   # "<experiment> <split> <metric>" of each input not found
    holds: bool | None         # None: an input is missing
    one_class: dict[str, str] = field(default_factory=dict)  # {label: class} of inputs from a net predicting one class


def judge(claim: Claim, metrics_of: Callable[[str], Mapping | None]) -> Verdict:
    """Decide ``claim`` on the metrics ``metrics_of(experiment)`` returns (None: no metrics file)."""
    values, missing, one_class = {}, [], {}
    for i in claim.inputs:
        scored = (metrics_of(i.experiment) or {}).get(i.split) or {}
        value = scored.get(i.metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[i.label] = float(value)
        else:
            missing.append(f"{i.experiment} {i.split} {i.metric}")
        if scored.get(ONE_CLASS):  # a constant answer: the claim may hold against a net that learned nothing
            one_class[i.label] = scored[ONE_CLASS]
    return Verdict(claim, values, tuple(missing), None if missing else bool(claim.test(values)), one_class)


def judge_all(metrics_of: Callable[[str], Mapping | None]) -> list[Verdict]:
    return [judge(c, metrics_of) for c in CLAIMS]


def metrics_reader(ctx) -> Callable[[str], Mapping | None]:
    """A net's scores and record (Context.metrics), None where this run has no results for it."""
    def read(experiment: str) -> Mapping | None:
        return ctx.metrics(experiment) if (Path(ctx.metrics_dir) / f"{experiment}.json").exists() else None

    return read


def _numbers(v: Verdict) -> str:
    found = ", ".join(f"{label} {_value(x)}" + (f" ({report.one_class_text(v.one_class[label])})"
                                                if label in v.one_class else "") for label, x in v.values.items())
    return found + (f" (missing: {'; '.join(v.missing)})" if v.missing else "")


def _value(x: float) -> str:
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"


def _word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "not tested (inputs missing)"}[holds]


def counts(verdicts: list[Verdict]) -> str:
    """'7 of 11 claims hold (5 of 7 expected ones); 1 not tested'."""
    held = sum(v.holds is True for v in verdicts)
    expected = [v for v in verdicts if v.claim.expected]
    untested = sum(v.holds is None for v in verdicts)
    line = (f"{held} of {len(verdicts)} claims hold ({sum(v.holds is True for v in expected)} of the "
            f"{len(expected)} the smoke profile is tuned for)")
    return line + (f"; {untested} not tested (inputs missing)" if untested else "")


def claims_page(verdicts: list[Verdict], smoke: bool, header: Mapping[str, str], seeds_note: str | None = None) -> str:
    """The Markdown page: one row per claim with the numbers it rests on and whether it holds.

    ``seeds_note``: whether reports/claims-seeds.md is current (segcore.report.fingerprint.note)."""
    rows = [[v.claim.source, v.claim.finding + ("" if v.claim.expected else " *(reported either way)*"),
             _numbers(v), _word(v.holds)] for v in verdicts]
    parts = ["# The papers' findings, checked on this run", ""]
    if smoke:
        parts += [report.SMOKE_WARNING, "",
                  "An ordering can hold on the twins although no number matches the paper's. One run "
                  "on one CPU decides nothing: `reports/claims-seeds.md` shows how often each holds "
                  "over seeds" + (f" ({seeds_note})." if seeds_note else "."), ""]
    parts += [counts(verdicts) + ".", "",
              tabulate(rows, headers=["source", "finding", "numbers (mean IU in percent unless named)",
                                      "verdict"], tablefmt="github", disable_numparse=True), "",
              "Rand error is a fraction (lower is better); geometric accuracy is in percent.", "",
              tabulate(list(header.items()), headers=["provenance", ""], tablefmt="github")]
    return "\n".join(parts) + "\n"


def seeds_page(verdicts_by_run: Mapping[str, list[Verdict]]) -> str:
    """reports/claims-seeds.md: one column per run (seed), and how many runs each claim held in."""
    runs = list(verdicts_by_run)
    rows = []
    for i, claim in enumerate(CLAIMS):
        verdicts = [verdicts_by_run[r][i] for r in runs]
        tested = [v for v in verdicts if v.holds is not None]
        rows.append([claim.finding + ("" if claim.expected else " *(reported either way)*"),
                     *(_word(v.holds) for v in verdicts),
                     f"{sum(v.holds is True for v in tested)} of {len(tested)}"])
    table = tabulate(rows, headers=["finding", *runs, "holds in"], tablefmt="github", disable_numparse=True)
    expected = [i for i, c in enumerate(CLAIMS) if c.expected]
    majority = sum(2 * sum(verdicts_by_run[r][i].holds is True for r in runs) > len(runs) for i in expected)
    return "\n".join(["# The papers' findings over several seeds", "", report.SMOKE_WARNING, "",
                      f"{len(runs)} run{'s' if len(runs) != 1 else ''} ({', '.join(runs)}). {majority} of the {len(expected)} claims the smoke "
                      f"profile is tuned for hold in a majority of them.", "", table, ""])


def build(ctx, out: Path) -> list[Path]:
    """Write ``out`` (reports/claims.md) from this run's metrics files."""
    import datetime as dt

    from segcore.report.context import code_version

    p = ctx.params
    header = {"profile": p.profile, "data": p.data_source, "scale": p.scale_name,
              "device": (metrics_reader(ctx)("fcn8s") or {}).get("device", "?"),
              "code": code_version(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    page = claims_page(judge_all(metrics_reader(ctx)), ctx.smoke, header, ctx.seeds_note)
    report.write_text_atomic(out, page)
    return [out]
