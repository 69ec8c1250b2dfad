"""Each data set's download stage and preparation: the synthetic twin or the real, verified files.

``twin`` is the twin's sizes (params.yaml ``twin.<data set>``) when the twin is used, and None
for the real data. ``catalog`` and ``record_file`` replace segcore.data.download's CATALOG and
recorded-checksum file (tests serve twin archives from 127.0.0.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segcore.core import atomic
from segcore.data import isbi, nyud, siftflow, voc
from segcore.data.download import (CATALOG, RECORDED_CHECKSUMS, DownloadError, ensure, ensure_file,
                                   safe_extract, verify_or_record)

NYUD_FILES = ("nyud_labeled", "nyud_mapping", "nyud_splits")


def download_voc(twin: dict | None, out: Path, archives: Path, progress: bool = True,
                 catalog: dict | None = None, check_count: bool = True, record_file: Path | None = None) -> None:
    """VOC2011 + VOC2012 + SBD under ``out``; ``check_count`` asserts the real data's 736 seg11valid images.

    The VOC2011 test tar (segcore.data.voc.VOC2011_TEST_TAR) needs a login to the evaluation server, so
    it is never downloaded: where it was placed in ``archives`` by hand, its size + sha256 are pinned in
    ``record_file`` (none are published) and it is extracted beside the rest.
    """
    out = Path(out)
    if twin is not None:
        from segcore.data.twin_voc import write_voc_twin

        atomic.build_dir(out, lambda tmp: write_voc_twin(tmp, **twin))  # rebuilt whole, then renamed
        return
    catalog = catalog or CATALOG
    out.mkdir(parents=True, exist_ok=True)
    for key in ("voc2012", "voc2011", "sbd"):
        ensure(catalog[key], Path(archives), out, progress=progress)
    placed = Path(archives) / voc.VOC2011_TEST_TAR
    if placed.exists() and voc.voc2011_test_dir(out) is None:
        verify_or_record(placed, record_file or RECORDED_CHECKSUMS)
        safe_extract(placed, out)
        if voc.voc2011_test_dir(out) is None:
            raise DownloadError(f"{placed} was extracted into {out} but none of "
                                f"{', '.join(voc.VOC2011_TEST_DIRS)} holds ImageSets/Segmentation/test.txt")
    ids = [s.id for s in voc.split_samples(out, "seg11valid")]
    voc.check_seg11valid_count(ids, real=check_count)


def download_nyud(twin: dict | None, out: Path, archives: Path, progress: bool = True,
                  catalog: dict | None = None, record_file: Path | None = None) -> None:
    """The three published NYUD files (labeled .mat, class mapping, splits) under ``out``."""
    if twin is not None:
        from segcore.data.twin_nyud import write_nyud_twin

        atomic.build_dir(Path(out), lambda tmp: write_nyud_twin(tmp, **twin))
        return
    catalog = catalog or CATALOG
    for key in NYUD_FILES:
        ensure_file(catalog[key], Path(archives), Path(out), progress=progress, record_file=record_file)


def download_siftflow(twin: dict | None, out: Path, archives: Path, progress: bool = True,
                      catalog: dict | None = None, record_file: Path | None = None) -> None:
    """SiftFlowDataset/ under ``out``, extracted.

    The zip has no published checksum: its size and sha256 are pinned in ``record_file``
    (default segcore/data/recorded_checksums.json) on first download and enforced afterwards.
    """
    if twin is not None:
        from segcore.data.twin_siftflow import write_siftflow_twin

        write_siftflow_twin(Path(out), **twin)
        return
    catalog = catalog or CATALOG
    ensure(catalog["siftflow"], Path(archives), Path(out), progress=progress,
           record_file=record_file or RECORDED_CHECKSUMS)


def download_isbi(twin: dict | None, out: Path, archives: Path, progress: bool = True,
                  catalog: dict | None = None) -> None:
    """ISBI 2012 under ``out``.

    Real data: the three TIFFs placed by hand in ``archives`` (the official site needs a
    registration) are linked into ``out``; otherwise the HDF5 mirror is downloaded and its
    published sha256 checked.
    """
    out = Path(out)
    if twin is not None:
        from segcore.data.twin_isbi import write_isbi_twin

        write_isbi_twin(out, **twin)
        return
    archives = Path(archives)
    placed = [archives / name for name in (isbi.TRAIN_VOLUME, isbi.TRAIN_LABELS, isbi.TEST_VOLUME)]
    if placed[0].exists() and placed[1].exists():
        atomic.build_dir(out, lambda tmp: [atomic.link_or_copy(p, tmp / p.name) for p in placed if p.exists()])
        return
    ensure_file((catalog or CATALOG)["isbi_mirror"], archives, out, progress=progress)


def prepare_nyud(src: Path, out: Path, val_fraction: float, seed: int, hold_out: bool = True,
                 progress: bool = True) -> dict[str, int]:
    """Crops, 40-class labels, depth and splits in the FCN / Gupta form (segcore.data.nyud.prepare)."""
    return atomic.build_dir(out, lambda tmp: nyud.prepare(src, tmp, val_fraction=val_fraction, seed=seed,
                                                          hold_out=hold_out, progress=progress))


def prepare_siftflow(src: Path, out: Path, source: str, val_fraction: float, seed: int,
                     hold_out: bool = True, progress: bool = True) -> dict[str, int]:
    """Shifted labels, hard-linked images and splits (segcore.data.siftflow.prepare), built then renamed.

    On the real data the split sizes are checked (2,488 train, 200 test, 2 unannotated).
    """
    root = Path(src) / siftflow.ROOT
    return atomic.build_dir(out, lambda tmp: siftflow.prepare(root, tmp, val_fraction=val_fraction, seed=seed,
                                                              hold_out=hold_out, check_counts=source == "real",
                                                              progress=progress))


def prepare_isbi(src: Path, out: Path, eval_fraction: float, progress: bool = True) -> dict[str, int]:
    """volume.npy, labels.npy (255 cell / 0 membrane), test.npy if present, and the slice lists.

    The last ``eval_fraction`` of the training slices (at least one) are held out. ``progress`` is
    unused: three 30-slice stacks take under a second (the other preparations show theirs).
    """
    data = isbi.load_isbi(Path(src))
    n = len(data.train_volume)
    n_eval = max(1, int(round(n * eval_fraction)))
    train, heldout = isbi.holdout_split(n, min(n_eval, n - 1))

    def build(tmp: Path) -> dict[str, int]:
        (tmp / "splits").mkdir(parents=True)
        np.save(tmp / "volume.npy", data.train_volume)
        np.save(tmp / "labels.npy", data.train_labels)
        if data.test_volume is not None:
            np.save(tmp / "test.npy", data.test_volume)
        for name, idx in zip(isbi.SPLITS, (train, heldout)):
            (tmp / "splits" / f"{name}.txt").write_text("".join(f"{i}\n" for i in idx))
        (tmp / "source.txt").write_text(data.source + "\n")
        return {"train": len(train), "heldout": len(heldout), "test": 0 if data.test_volume is None
                else len(data.test_volume)}

    return atomic.build_dir(out, build)
