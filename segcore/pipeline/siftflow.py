"""SIFT Flow stages (Table 5): download or twin, then preparation into the FCN form.

Kept apart from segcore.pipeline.stages so that the VOC stages, which depend on that module, do not
rerun when only the SIFT Flow side changes.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from segcore.core import atomic
from segcore.data import siftflow
from segcore.config.params import Params


def download_siftflow(params: Params, out: Path, archives: Path, progress: bool = True,
                      catalog: dict | None = None, record_file: Path | None = None) -> None:
    """SiftFlowDataset/ under ``out``: the synthetic twin, or the verified download, extracted.

    The zip has no published checksum: its size and sha256 are pinned in ``record_file``
    (default segcore/data/recorded_checksums.json) on first download and enforced afterwards.
    """
    out = Path(out)
    if params.data_source == "twin":
        from segcore.data.twin_siftflow import write_siftflow_twin

        write_siftflow_twin(out, **asdict(params.twin.siftflow))
        return
    from segcore.data.download import CATALOG, RECORDED_CHECKSUMS, ensure

    catalog = catalog or CATALOG
    ensure(catalog["siftflow"], Path(archives), out, progress=progress, record_file=record_file or RECORDED_CHECKSUMS)


def prepare_siftflow(params: Params, src: Path, out: Path) -> dict[str, int]:
    """Shifted labels, hard-linked images and splits (segcore.data.siftflow.prepare), built then renamed.

    On the real data the split sizes are checked (2,488 train, 200 test, 2 unannotated).
    """
    root = Path(src) / siftflow.ROOT
    real = params.data_source == "real"
    return atomic.build_dir(out, lambda tmp: siftflow.prepare(root, tmp, val_fraction=params.siftflow.val_fraction,
                                                              seed=params.seed, check_counts=real))
