"""The compact scores table (stages/scores.py): one row per net and split, narrow, and a net that
predicted one class says so where its record is there."""

import json
import subprocess
import sys
from pathlib import Path

from segcore.report import results
from segcore.report.scores import scores_table

ROOT = Path(__file__).resolve().parents[1]


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    rows = [line.split(None, 4) for line in table.splitlines()[4:]]
    return {(r[0], r[1]): r[2:] for r in rows}


def test_rows_per_net_and_split_with_the_one_class_flag_from_the_record(tmp_path):
    metrics, evals = tmp_path / "metrics", tmp_path / "eval"
    results.write({"seg11valid": {"mean_iu": 3.16, "pixel_acc": 56.94, "predicts_only": "background"}}, {},
                  metrics / "fcn32s-fixed.json", evals / "fcn32s-fixed" / results.RECORD)
    results.write({"heldout": {"mean_iu": 67.1, "pixel_acc": 82.5, "rand_error": 0.32594, "warping_error": 0.0052}},
                  {}, metrics / "unet-isbi.json", evals / "unet-isbi" / results.RECORD)
    (metrics / "fcn8s.json").write_text(json.dumps({"seg11valid.mean_iu": 17.02, "voc2012_test.mean_iu": 12.17}))
    (metrics / "timing.json").write_text(json.dumps({"fcn8s.mean_ms": 2888.7}))  # not a net: no row
    table = scores_table(metrics, evals)
    rows = _rows(table)
    assert list(rows) == [("fcn32s-fixed", "seg11valid"), ("fcn8s", "seg11valid"), ("fcn8s", "voc2012_test"),
                          ("unet-isbi", "heldout")]  # the registry's order
    assert rows["fcn32s-fixed", "seg11valid"] == ["3.2", "56.9", "predicts one class: background"]
    assert rows["fcn8s", "voc2012_test"] == ["12.2", "-"]
    assert rows["unet-isbi", "heldout"][2] == "Rand error 0.3259, warping error 0.0052"
    assert "predicts one class" not in scores_table(metrics)  # no records: no flag, and no error


def test_the_script_prints_the_committed_scores_narrow_enough_for_a_terminal():
    done = subprocess.run([sys.executable, "stages/scores.py"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "fcn8s" in out and max(len(line) for line in out.splitlines()) <= 100
    assert scores_table(ROOT / "no-such-folder").startswith("no scores in")
