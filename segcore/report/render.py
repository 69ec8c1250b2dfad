"""Render any paper table as Markdown: published value, reproduced value and (paper profile) difference.

One renderer serves every table: a :class:`segcore.report.paper.PaperTable` names the rows and columns,
``ours`` maps experiment names to measured values (percent, or the column's unit, which the line
under the table states per column), and a provenance block says which profile, data, device and
code produced them.
"""

from __future__ import annotations

import math
from pathlib import Path

from tabulate import tabulate

from segcore.core import atomic
from segcore.report.paper import PaperTable
from segcore.report.results import ONE_CLASS

SMOKE_WARNING = (
    "**Smoke profile: synthetic twin data and scaled-down nets.** These numbers show that the "
    "pipeline runs and learns; they are *not* a reproduction of the paper's results. Run the "
    "`paper` profile on the real data for that."
)


def _fmt(value: float | None, unit: str = "") -> str:
    """A cell in the column's unit: percent (one decimal), ms, count (integer), M (millions) or frac."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "ms":
        return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"
    if unit == "count":
        return f"{value:.0f}"
    if unit == "M":  # a published round "57M" stays "57M"; a measured count gets a decimal
        return f"{value / 1e6:.0f}M" if value % 1e6 == 0 else f"{value / 1e6:.1f}M"
    if unit == "frac":  # an error as a fraction (ISBI: 0.000353), six decimals at most
        return _frac(value)
    return f"{value:.1f}"


def _frac(value: float) -> str:
    """0.000005, 0.0382, 0.345: plain decimals (no exponent), trailing zeros dropped."""
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _diff(ours: float | None, paper: float | None, unit: str = "") -> str:
    if ours is None or paper is None or math.isnan(ours):
        return ""
    d = ours - paper
    if unit in ("ms", "count"):
        return f"{d:+.0f}" + (" ms" if unit == "ms" else "")
    if unit == "M":
        return f"{d / 1e6:+.1f}M"
    if unit == "frac":
        return ("+" if d >= 0 else "-") + _frac(abs(d))
    return f"{d:+.1f}"


# What a column's unit means, for the line under the table (percent: the paper's default).
UNIT_TEXT = {"": "percent", "ms": "milliseconds", "count": "integers", "M": "millions (M)",
             "frac": "fractions (0 to 1, not percent)"}


def units_line(table: PaperTable, diff: bool = True) -> str:
    """'Units: mean IU: percent; forward time: milliseconds; ...', each unit once, in column order.

    Why per column: one blanket 'values in percent' misread the ISBI errors, which are fractions.
    """
    by_unit: dict[str, list[str]] = {}
    for key, heading in table.columns.items():
        by_unit.setdefault(table.units.get(key, ""), []).append(heading)
    parts = [f"{', '.join(headings)}: {UNIT_TEXT[unit]}" for unit, headings in by_unit.items()]
    return f"Units: {'; '.join(parts)}." + (" *diff.* = ours - paper." if diff else "")


def _published(value: float | None, unit: str, digits: int | None) -> str:
    """A paper cell with the decimals the paper prints (0.0010 stays 0.0010), else as ``_fmt``."""
    if digits is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return _fmt(value, unit)
    return f"{value:.{digits}f}"


def trials_text(t: dict) -> str:
    """'1705.2 ± 3.1 (mean ± std of 3 trials)', or '1705.2 (1 trial)': no spread from one trial."""
    if t["trials"] > 1:
        return f"{t['mean_ms']:.1f} ± {t['std_ms']:.1f} (mean ± std of {t['trials']} trials)"
    return f"{t['mean_ms']:.1f} (1 trial)"


def trials_phrase(t: dict) -> str:
    """'mean of 20 trials', or 'one trial'."""
    return f"mean of {t['trials']} trials" if t["trials"] > 1 else "one trial"


def one_class(*splits: dict | None) -> dict[str, str]:
    """``{ONE_CLASS: name}`` when a net predicted one class only on one of ``splits`` (a split's results), else {}.

    Table builders that assemble their own row values pass it on, so the row is flagged as the others.
    """
    names = [s[ONE_CLASS] for s in splits if s and s.get(ONE_CLASS)]
    return {ONE_CLASS: names[0]} if names else {}


def one_class_text(name: str) -> str:
    """'predicts one class: background': the words every page uses for a net that learned nothing."""
    return f"predicts one class: {name}"


def one_class_label(label: str, measured: dict | None) -> str:
    """'FCN-32s-fixed *(predicts one class: background)*' for a net whose predictions are a single class."""
    name = (measured or {}).get(ONE_CLASS)
    return f"{label} *({one_class_text(name)})*" if name else label


def one_class_note(ours: dict[str, dict | None], extra=()) -> list[str]:
    """The note under a table with a flagged row: such a row's scores are a constant answer, not a result."""
    measured = [*ours.values(), *(m for _, m in extra)]
    names = sorted({m[ONE_CLASS] for m in measured if m and m.get(ONE_CLASS)})
    if not names:
        return []
    return [f"*predicts one class*: the net gave every scored pixel the same class ({', '.join(names)}), so its "
            "scores are those of that constant answer (pixel accuracy = the class's share of the pixels), "
            "not something it learned: read the row as \"did not learn\", not as a result."]


def provenance_block(info: dict[str, str]) -> str:
    """A two-column Markdown table of what produced the numbers (profile, data, device, commit, ...)."""
    return tabulate(list(info.items()), headers=["provenance", ""], tablefmt="github")


def table_rows(table: PaperTable, ours: dict[str, dict[str, float | None]],
               extra: list[tuple[str, dict[str, float | None]]] = (), diff: bool = True,
               flag: bool = True, side: dict[str, str] | None = None) -> list[list[str]]:
    """One Markdown row per paper row: lead cells (rank), label, then paper / ours (/ difference) per column.

    Reference rows (other methods) show the published value only and are marked. ``extra`` rows
    are ours only (models beyond the paper) and are marked as such. ``diff=False`` drops the
    difference cells (the smoke profile: its numbers are not comparable with the paper's).
    ``flag``: a net whose predictions were a single class (``ONE_CLASS`` in its values) is marked so.
    ``side``: {experiment: cell} of one last column (the released nets scored here), "" for other rows.
    """
    blank_lead = [""] * len(table.lead)
    mark = one_class_label if flag else (lambda label, _: label)
    rows = []
    for row in table.rows:
        measured = ours.get(row.experiment) if row.experiment else None
        label = mark(row.label, measured) if row.experiment else f"{row.label} *(reference, as published)*"
        cells = [*(row.lead or blank_lead), label]
        for key in table.columns:
            unit = table.units.get(key, "")
            paper = row.values.get(key)
            mine = measured.get(key) if measured else None
            cells += [row.note if (row.note and unit) else _published(paper, unit, table.digits.get(key)),
                      _fmt(mine, unit) if row.experiment else "",
                      *([_diff(mine, paper, unit)] if diff else [])]
        if side is not None:
            cells.append(side.get(row.experiment or "", ""))
        rows.append(cells)
    for label, measured in extra:
        cells = [*blank_lead, mark(f"{label} *(beyond the paper)*", measured)]
        for key in table.columns:
            cells += ["", _fmt(measured.get(key), table.units.get(key, "")), *([""] if diff else [])]
        rows.append(cells + ([""] if side is not None else []))
    return rows


def table_block(table: PaperTable, ours: dict[str, dict[str, float | None]], *, smoke: bool,
                extra: list[tuple[str, dict[str, float | None]]] = (), flag: bool = True,
                side: tuple[str, dict[str, str]] | None = None) -> str:
    """The Markdown table and its units line; no difference column in the smoke profile.

    ``flag=False``: no "predicts one class" marks (a table of the nets' architecture, not their scores).
    ``side``: (heading, {experiment: cell}) of a last column, e.g. the released nets scored here."""
    headers = [*table.lead, "model"]
    for heading in table.columns.values():
        headers += [f"{heading} (paper)", f"{heading} (ours)", *([] if smoke else ["diff."])]
    if side:
        headers.append(side[0])
    rows = table_rows(table, ours, list(extra), diff=not smoke, flag=flag, side=side[1] if side else None)
    return "\n".join([tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), "",
                      units_line(table, diff=not smoke)])


def render(table: PaperTable, ours: dict[str, dict[str, float | None]], info: dict[str, str], *,
           smoke: bool, notes: list[str] = (), figures: list[tuple[str, str]] = (),
           extra: list[tuple[str, dict[str, float | None]]] = (), sections: list[str] = (),
           scored: str = "", after_table: list[str] = (), side: tuple[str, dict[str, str]] | None = None) -> str:
    """The whole Markdown page for one table.

    ``scored`` ('16 test images') is added to the title: the split this run scored, not the
    paper's. ``after_table`` blocks follow the table directly (a second table of the same page);
    ``sections`` follow the notes. ``side``: a last column (see ``table_block``).
    """
    title = f"{table.title}: {scored} scored" if scored else table.title
    parts = [f"# {title}", "",
             "<!-- Generated by `dvc repro` (stage `report`); do not edit by hand. -->", ""]
    if smoke:
        parts += [f"> {SMOKE_WARNING}", ""]
    parts += [table_block(table, ours, smoke=smoke, extra=extra, side=side), ""]
    for block in after_table:
        parts += [block.rstrip(), ""]
    for note in (*table.notes, *notes, *one_class_note(ours, extra)):
        parts += [f"- {note}"]
    for section in sections:
        parts += ["", section.rstrip()]
    parts += ["", "## Provenance", "", provenance_block(info), ""]
    for caption, path in figures:
        parts += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return "\n".join(parts).rstrip() + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary name so a reader never sees half a report."""
    atomic.write_text(path, text)
