"""Assemble the report pages (Tables 1 to 5, U-Net, their figures) from the stage outputs.

TABLES is the registry: page name -> builder. A builder takes the Context and the page's path
(reports/<name>.md), writes the page and any figure beside it, and returns the paths it wrote.
Adding a table: its module here (a ``build(ctx, out)``), one TABLES entry, its published numbers
in segcore/report/paper.py, and its outputs in dvc.yaml's report stage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segcore.report import claims, fingerprint, table1, table2, table3, table4, table5, table_unet
from segcore.report.index import build_index
from segcore.report.context import Context, ReportParams, code_version, training_description

__all__ = ["TABLES", "build_reports", "code_version", "training_description"]

TABLES: dict[str, Callable[[Context, Path], list[Path]]] = {
    "table1": table1.build,
    "table2": table2.build,   # each page with its curves-<page>.png; Table 2 also figure4.png
    "table3": table3.build,
    "table4": table4.build,
    "table5": table5.build,
    "unet": table_unet.build,  # with unet.png
    "claims": claims.build,    # the papers' qualitative findings, checked on this run's numbers
}


def build_reports(params: ReportParams, data_root: Path, metrics_dir: Path, eval_dir: Path, models_dir: Path,
                  out: Path, seeds_page: Path | None = None, index_also: list[Path] = ()) -> list[Path]:
    """Write reports/<name>.md of every TABLES entry, their figures, and the index README.md under ``out``.

    ``seeds_page``: reports/claims-seeds.md (written by `make claims-seeds`, read here, never written): the
    index and claims.md say whether the code and params it was made from are still the current ones.
    ``index_also``: pages written by other stages (reports/released.md), listed in the index after these.
    """
    seeds_note = fingerprint.note(fingerprint.check(seeds_page)) if seeds_page else None
    ctx = Context(params, Path(data_root), Path(metrics_dir), Path(eval_dir), Path(models_dir), seeds_note)
    written = [path for name, build in TABLES.items() for path in build(ctx, Path(out) / f"{name}.md")]
    notes = {Path(seeds_page).name: seeds_note} if seeds_page else {}
    return [*written, build_index([*written, *map(Path, index_also)], Path(out) / "README.md", notes)]
