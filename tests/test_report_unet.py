"""U-Net's ISBI 2012 table as published: every row, its rank, its digits, and units stated per column."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segcore.report import paper
from segcore.report import render as report

# U-Net paper, Table 1 (ISBI 2012, ranking of 6 March 2015), typed here from the paper, not from
# paper.py, so a row dropped or mistyped there fails: rank, group, warping, Rand, pixel error.
PUBLISHED = [
    ("", "human values", "0.000005", "0.0021", "0.0010"),
    ("1", "u-net", "0.000353", "0.0382", "0.0611"),
    ("2", "DIVE-SCI", "0.000355", "0.0305", "0.0584"),
    ("3", "IDSIA", "0.000420", "0.0504", "0.0613"),
    ("4", "DIVE", "0.000430", "0.0545", "0.0582"),
    ("10", "IDSIA-SCI", "0.000653", "0.0189", "0.1027"),
]
OURS = {"unet-isbi": {"warping_error": 0.006531, "rand_error": 0.334676, "pixel_error": 0.066697}}


def _table(page: str) -> list[list[str]]:
    """Cells of the page's first Markdown table, header first, separator dropped."""
    lines = page.split("\n\n|", 1)[1].split("\n\n")[0].splitlines()  # up to the blank line after it
    rows = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines]
    return [rows[0]] + [r for r in rows[1:] if not set("".join(r)) <= set("-:")]


def _page(extra=(), smoke=False) -> str:
    return report.render(paper.TABLE_UNET, OURS, {"profile": "paper"}, smoke=smoke, extra=list(extra))


def test_every_published_row_with_its_rank_and_printed_digits():
    header, *rows = _table(_page())
    assert header[:2] == ["rank (paper)", "model"]
    published = [(r[0], r[1].removesuffix(" *(reference, as published)*"), r[2], r[5], r[8]) for r in rows]
    assert published == PUBLISHED


def test_our_row_sits_beside_the_published_u_net_with_differences():
    row = next(r for r in _table(_page())[1:] if r[1] == "u-net")
    assert row[2:5] == ["0.000353", "0.006531", "+0.006178"]
    assert row[5:8] == ["0.0382", "0.334676", "+0.296476"]


def test_rows_beyond_the_paper_have_no_rank():
    rows = _table(_page(extra=[("u-net without border weights (ours, ablation)", {"rand_error": 0.4})]))
    assert rows[-1][:2] == ["", "u-net without border weights (ours, ablation) *(beyond the paper)*"]
    assert all(len(r) == len(rows[0]) for r in rows)


def test_footer_says_fractions_per_column_not_percent():
    page = _page()
    assert "in percent" not in page and ": percent" not in page
    assert "Units: warping error, Rand error, pixel error: fractions (0 to 1, not percent)." in page
    # The other tables keep percent, now named per column.
    assert report.units_line(paper.TABLE1) == ("Units: mean IU: percent; forward time: milliseconds. "
                                               "*diff.* = ours - paper.")
    assert report.units_line(paper.TABLE1_ARCH, diff=False).startswith("Units: conv. layers, rf size")
    assert report.units_line(paper.TABLE2) == ("Units: pixel acc., mean acc., mean IU, f.w. IU: percent. "
                                               "*diff.* = ours - paper.")


def test_paper_tables_refuse_rows_that_would_shift_cells():
    row = paper.PaperRow("x", {"warping_error": 0.1}, lead=("1", "2"))
    with pytest.raises(ValueError, match=r"unet: row 'x' has 2 lead cells"):
        replace(paper.TABLE_UNET, rows=(row,))
    with pytest.raises(ValueError, match=r"unknown columns \['warp_error'\]"):
        replace(paper.TABLE_UNET, rows=(paper.PaperRow("x", {"warp_error": 0.1}),))


def test_unet_page_through_its_registered_builder(tmp_path):
    """The page the report stage writes (TABLES['unet']) carries the rank column and every published row."""
    from segcore.config.params import load_params
    from segcore.report import results
    from segcore.report.table_unet import UNET_EXPERIMENTS, build_unet
    from segcore.report.tables import TABLES
    from segcore.report import table_unet

    assert TABLES["unet"] is table_unet.build
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    metrics_dir, eval_dir = tmp_path / "metrics", tmp_path / "eval"
    metrics_dir.mkdir()
    for name in UNET_EXPERIMENTS:
        held = {**OURS["unet-isbi"], "heldout_slices": "8,9", "slices": 2}
        (eval_dir / name).mkdir(parents=True)
        results.write({"heldout": held}, {}, metrics_dir / f"{name}.json", eval_dir / name / results.RECORD)
    plane = np.zeros((8, 8), np.float32)
    np.savez(eval_dir / UNET_EXPERIMENTS[0] / "figure.npz", image=plane, label=plane, weight=plane + 1, prob=plane)
    out = tmp_path / "reports" / "unet.md"
    out.parent.mkdir()
    metrics_of = lambda n: results.read(metrics_dir / f"{n}.json", eval_dir / n / results.RECORD)  # noqa: E731
    written = build_unet(params, metrics_of, eval_dir, {"profile": "smoke"}, True, out)
    assert written == [out, out.with_suffix(".png")]
    page = out.read_text()
    assert "| 10 " in page and "IDSIA-SCI *(reference, as published)*" in page
    assert "Values in percent" not in page and "fractions (0 to 1, not percent)" in page
