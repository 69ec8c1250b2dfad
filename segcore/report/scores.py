"""Every net's headline scores as one short table, for a terminal: `dvc metrics show` prints them as
one row of hundreds of columns per file.

One row per net and scored split, in the registry's order (segcore.train.experiments): mean IU and
pixel accuracy in percent, and what else the split scored (geometric accuracy, the ISBI errors).
Where the net's evaluation record is there too (eval/<net>/record.json, after `dvc repro` or
`dvc pull`), a net that predicted a single class says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from segcore.report import results
from segcore.report.render import one_class_text
from segcore.train.experiments import EXPERIMENTS

# Beside mean IU and pixel accuracy: (key, label, format) of the other scores a split may carry.
OTHER = (("geo_acc", "geom. acc.", "{:.1f}%"), ("rand_error", "Rand error", "{:.4f}"),
         ("warping_error", "warping error", "{:.4f}"))


def _split_rows(name: str, scored: dict) -> list[list[str]]:
    rows = []
    for split, values in scored.items():
        if not isinstance(values, dict) or not ({"mean_iu", "pixel_acc"} | {k for k, *_ in OTHER}) & set(values):
            continue  # provenance, or a split with no score (labels withheld: a server archive)
        cell = lambda key: f"{values[key]:.1f}" if isinstance(values.get(key), (int, float)) else "-"  # noqa: E731
        other = [f"{label} {fmt.format(values[key])}" for key, label, fmt in OTHER if key in values]
        if values.get(results.ONE_CLASS):
            other.append(one_class_text(values[results.ONE_CLASS]))
        rows.append([name, split, cell("mean_iu"), cell("pixel_acc"), ", ".join(other)])
    return rows


def scores_table(metrics_dir: Path, eval_dir: Path | None = None) -> str:
    """The table over every metrics/<net>.json present (joined with its record where ``eval_dir`` has it)."""
    rows = []
    for name in EXPERIMENTS:
        flat_file = Path(metrics_dir) / f"{name}.json"
        if not flat_file.is_file():
            continue
        record = Path(eval_dir) / name / results.RECORD if eval_dir else None
        scored = (results.read(flat_file, record) if record and record.is_file()
                  else results.nested(json.loads(flat_file.read_text())))
        rows += _split_rows(name, scored)
    if not rows:
        return f"no scores in {metrics_dir} (run `dvc repro` first)"
    return ("Scores in percent, the ISBI errors as fractions (lower is better).\n\n"
            + tabulate(rows, headers=["net", "split", "mean IU", "pixel acc.", "also"], tablefmt="simple",
                       disable_numparse=True))
