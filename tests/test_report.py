"""The table renderer: paper / ours / difference, reference rows, smoke warning, provenance."""

from segcore import paper, report


def _page(smoke=True, extra=()):
    ours = {"fcn32s-fixed": {"pixel_acc": 80.0, "mean_acc": 50.0, "mean_iu": 40.0, "fw_iu": 70.0},
            "fcn8s": {"pixel_acc": 91.3, "mean_acc": 75.9, "mean_iu": 60.2, "fw_iu": 83.2}}
    info = {"profile": "smoke", "device": "CPU: test (2 threads)"}
    return report.render(paper.TABLE2, ours, info, smoke=smoke, extra=list(extra))


def test_rows_show_paper_ours_and_difference():
    line = next(l for l in _page().splitlines() if l.startswith("| FCN-8s "))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["FCN-8s", "90.3", "91.3", "+1.0"]
    assert cells[7:10] == ["62.7", "60.2", "-2.5"]


def test_missing_result_is_a_dash_not_a_number():
    line = next(l for l in _page().splitlines() if l.startswith("| FCN-16s "))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:4] == ["90.0", "-", ""]


def test_reference_rows_are_marked_and_units_kept():
    ours = {"fcn8s": {"voc2011_test": None, "voc2012_test": 50.0, "inference_ms": 1832.0}}
    page = report.render(paper.TABLE3, ours, {"profile": "paper"}, smoke=False)
    assert "SDS *(reference, as published)*" in page
    assert "1832 ms" in page and "+1657 ms" in page
    assert "Smoke profile" not in page


def test_smoke_pages_say_they_are_not_a_reproduction_and_carry_provenance():
    page = _page()
    assert "not* a reproduction" in page
    assert "CPU: test (2 threads)" in page
    assert "do not edit by hand" in page


def test_extra_rows_are_marked_beyond_the_paper():
    page = _page(extra=[("U-Net", {"mean_iu": 12.0})])
    assert "U-Net *(beyond the paper)*" in page
