"""An evaluation's results as two files: the scores DVC compares, and the record of what produced them.

``metrics/<net>.json`` holds scores only, flat (``"seg11valid.mean_iu": 31.73``), in percent or the
paper's unit (ISBI errors as fractions, times in ms), so `dvc exp show` and `dvc metrics diff` list
numbers a person compares. Everything else (image counts, thresholds, the software, where and on
what the net was trained) goes to the record, ``eval/<net>/record.json``, which is not a metric.
:func:`combined` joins the two back into the per-split view the reports read.
"""

from __future__ import annotations

import json
from pathlib import Path

from segcore.core import atomic

# Per-split keys that are scores; any other per-split key (counts, thresholds) belongs to the record.
SCORES = frozenset({"pixel_acc", "mean_acc", "mean_iu", "fw_iu", "geo_acc", "pixel_error", "pixel_error_plain",
                    "rand_error", "warping_error", "mean_ms", "std_ms"})
RECORD = "record.json"
# Per-split record keys read from the confusion matrix (segcore.pipeline.evaluate): how many classes the
# net predicted for at least one pixel, and, when that is one, its name (a constant answer, not a result).
CLASSES_PREDICTED, ONE_CLASS = "classes_predicted", "predicts_only"


def split(results: dict[str, dict], provenance: dict) -> tuple[dict[str, float], dict]:
    """(flat scores, record) from ``{split: {key: value}}`` and what produced them."""
    flat = {f"{name}.{key}": value for name, values in results.items() for key, value in values.items()
            if key in SCORES}
    rest = {name: {k: v for k, v in values.items() if k not in SCORES} for name, values in results.items()}
    return flat, {**provenance, "splits": rest}


def write(results: dict[str, dict], provenance: dict, metrics_out: Path, record_out: Path) -> None:
    """Write the flat scores to ``metrics_out`` and the rest to ``record_out``, each whole or not at all."""
    flat, record = split(results, provenance)
    atomic.write_json(Path(record_out), record)
    atomic.write_json(Path(metrics_out), flat)


def nested(flat: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{"seg11valid.mean_iu": x}`` -> ``{"seg11valid": {"mean_iu": x}}`` (metric names have no dots)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        name, _, metric = key.rpartition(".")
        out.setdefault(name, {})[metric] = value
    return out


def combined(flat: dict[str, float], record: dict) -> dict:
    """The record's provenance with, per split, its scores and its counts: what a report reads."""
    rest = dict(record)
    splits = rest.pop("splits", {})
    scores = nested(flat)
    names = dict.fromkeys([*scores, *splits])  # in file order: a set's order would change from run to run
    return {**rest, **{name: {**scores.get(name, {}), **splits.get(name, {})} for name in names}}


def read(metrics_file: Path, record_file: Path) -> dict:
    """:func:`combined` of the two files."""
    return combined(json.loads(Path(metrics_file).read_text()), json.loads(Path(record_file).read_text()))


def headline(combined_results: dict) -> str:
    """One line of the splits' headline scores: 'seg11valid mean IU 31.7%, test mean IU 24.4%, ...'."""
    parts = []
    for name, values in combined_results.items():
        if not isinstance(values, dict):
            continue
        for key, text in (("mean_iu", "mean IU {:.1f}%"), ("geo_acc", "geom. acc. {:.1f}%"),
                          ("rand_error", "Rand error {:.4f}"), ("warping_error", "warping error {:.4f}")):
            if isinstance(values.get(key), (int, float)):
                parts.append(f"{name} " + text.format(values[key]))
    return ", ".join(parts) or "no scores"
