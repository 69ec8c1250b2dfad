"""NYU Depth v2 stages (Table 4): download or twin, preparation into the FCN form, HHA encoding.

Kept apart from segcore.pipeline.stages so that the VOC stages, which depend on that module, do not
rerun when only the NYUD side changes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from segcore.core import atomic
from segcore.data import nyud
from segcore.config.params import Params

NYUD_FILES = ("nyud_labeled", "nyud_mapping", "nyud_splits")


def download_nyud(params: Params, out: Path, archives: Path, progress: bool = True,
                  catalog: dict | None = None, record_file: Path | None = None) -> None:
    """The three published NYUD files under ``out``: the synthetic twin, or verified downloads.

    ``catalog`` replaces segcore.data.download.CATALOG and ``record_file`` the recorded-checksum file
    (tests serve twin files from 127.0.0.1).
    """
    out = Path(out)
    if params.data_source == "twin":
        from segcore.data.twin_nyud import write_nyud_twin

        write_nyud_twin(out, **asdict(params.twin.nyud))
        return
    from segcore.data.download import CATALOG, ensure_file

    catalog = catalog or CATALOG
    for key in NYUD_FILES:
        ensure_file(catalog[key], Path(archives), out, progress=progress, record_file=record_file)


def prepare_nyud(params: Params, src: Path, out: Path) -> dict[str, int]:
    """Crops, 40-class labels, depth and splits in the FCN / Gupta form (segcore.data.nyud.prepare)."""
    return atomic.build_dir(out, lambda tmp: nyud.prepare(src, tmp, val_fraction=params.nyud.val_fraction,
                                                          seed=params.seed))


def encode_hha(prepared: Path, out: Path, workers: int | None = None) -> int:
    """HHA PNG of every prepared frame; returns the number of frames."""
    from segcore.data.hha_encode import encode_all

    return atomic.build_dir(out, lambda tmp: encode_all(prepared, tmp, workers))
