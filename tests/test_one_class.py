"""Nets that learned nothing are flagged: the number of classes a net predicted comes from the confusion
matrix, goes to its record (not its metrics file), and the tables and claims mark a single-class net."""

import numpy as np

from segcore.eval.metrics import predicted_classes
from segcore.pipeline.evaluate import split_scores
from segcore.report import claims, paper, results
from segcore.report import render as report
from segcore.train.experiments import get_experiment

ALL_BACKGROUND = np.zeros((21, 21), np.int64)
ALL_BACKGROUND[:, 0] = [560, *[22] * 20]  # every pixel predicted background: 56% of them are


def test_predicted_classes_are_the_non_zero_columns():
    hist = np.array([[3, 0, 1], [2, 0, 0], [0, 0, 4]])
    assert predicted_classes(hist) == [0, 2]
    assert predicted_classes(ALL_BACKGROUND) == [0]


def test_a_single_class_net_is_recorded_as_such_and_its_scores_stay_flat(tmp_path):
    metrics, _ = split_scores(get_experiment("fcn32s-fixed"), [ALL_BACKGROUND], images=6)
    assert metrics["pixel_acc"] == 56.0 and metrics["classes_predicted"] == 1
    assert metrics["predicts_only"] == "background"
    results.write({"seg11valid": metrics}, {}, tmp_path / "m.json", tmp_path / "record.json")
    record = results.read(tmp_path / "m.json", tmp_path / "record.json")
    assert record["seg11valid"]["predicts_only"] == "background"
    flat = (tmp_path / "m.json").read_text()
    assert "predicts_only" not in flat and "classes_predicted" not in flat  # metrics/<net>.json: scores only
    learned = ALL_BACKGROUND.copy()
    learned[3, 0], learned[3, 3] = 0, 22
    metrics, _ = split_scores(get_experiment("fcn32s-fixed"), [learned], images=6)
    assert metrics["classes_predicted"] == 2 and "predicts_only" not in metrics


def _row(page: str, start: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(f"| {start}"))


def test_the_table_marks_the_row_and_says_why_in_a_note():
    ours = {"fcn32s-fixed": {"mean_iu": 3.2, "pixel_acc": 56.9, "predicts_only": "background"},
            "fcn8s": {"mean_iu": 17.0, "pixel_acc": 74.2}}
    page = report.render(paper.TABLE2, ours, {}, smoke=True,
                         extra=[("U-Net", {"mean_iu": 2.6, "predicts_only": "background"})])
    assert _row(page, "FCN-32s-fixed").startswith("| FCN-32s-fixed *(predicts one class: background)* ")
    assert "| FCN-8s " in page and "FCN-8s *(predicts" not in page
    assert "U-Net *(beyond the paper)* *(predicts one class: background)*" in page
    note = next(line for line in page.splitlines() if line.startswith("- *predicts one class*"))
    assert "(background)" in note and "not something it learned" in note
    clean = report.render(paper.TABLE2, {"fcn8s": ours["fcn8s"]}, {}, smoke=True)
    assert "predicts one class" not in clean


def test_table1_flags_the_scores_but_not_the_architecture_table():
    from segcore.report.table1 import table1_values

    arch = type("Arch", (), {"layers": 16, "params": 1, "rf": 404, "stride": 32})()
    metrics = {"voc2011_val": {"mean_iu": 2.8, "predicts_only": "background"}}
    ours = {"t1-vgg16": table1_values(metrics, {"mean_ms": 1.0}, arch, "voc2011_val")}
    scores = report.table_block(paper.TABLE1, ours, smoke=True)
    assert "FCN-VGG16 *(predicts one class: background)*" in scores
    assert "predicts one class" not in report.table_block(paper.TABLE1_ARCH, ours, smoke=True, flag=False)
    assert report.one_class({"mean_iu": 1.0}, None) == {}


def test_a_claim_resting_on_a_single_class_net_says_so():
    scored = {"fcn32s-fixed": {"seg11valid": {"mean_iu": 3.2, "predicts_only": "background"}},
              "fcn32s": {"seg11valid": {"mean_iu": 8.1}}}
    claim = next(c for c in claims.CLAIMS if c.key == "t2-all-layers")
    verdict = claims.judge(claim, scored.get)
    assert verdict.holds is True and verdict.one_class == {"32s-fixed": "background"}
    page = claims.claims_page([verdict], smoke=True, header={})
    assert "32s-fixed 3.2 (predicts one class: background), 32s 8.1" in _row(page, "FCN Table 2")
