"""The data stages: download (or write the twin of) a data set, prepare it, encode NYUD's HHA."""

from __future__ import annotations

from pathlib import Path

from segcore.core import atomic
from segcore.data.hha_encode import encode_all
from segcore.data.specs import DATASETS


def download(name: str, view: dict, out: Path, archives: Path, progress: bool = True, **hooks) -> None:
    """Data set ``name`` under ``out``: its twin, or its real files fetched and verified into ``archives``.

    ``view``: segcore.pipeline.views.download. ``hooks``: test-only replacements of the download
    catalog (segcore.data.fetch).
    """
    DATASETS[name].download(view["twin"], Path(out), Path(archives), progress, **hooks)


def prepare(name: str, view: dict, src: Path, out: Path, progress: bool = True) -> dict[str, int]:
    """The prepared form of data set ``name`` (splits, relabelling, arrays); returns the split sizes."""
    prepare_fn = DATASETS[name].prepare
    if prepare_fn is None:
        raise ValueError(f"data set {name!r} has no preparation stage")  # a dvc.yaml / registry mismatch
    return prepare_fn(Path(src), Path(out), progress=progress, **view)


def encode_hha(prepared: Path, out: Path, workers: int | None = None, progress: bool = True) -> int:
    """HHA PNG of every prepared NYUD frame; returns the number of frames."""
    return atomic.build_dir(out, lambda tmp: encode_all(prepared, tmp, workers, progress))
