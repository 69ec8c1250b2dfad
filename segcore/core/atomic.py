"""Write files so that a reader (or a killed run) never sees half of one: temp name, then rename.

Every write goes to ``<name>.tmp`` beside its target and is renamed over it only when complete; a
failed write removes the temp file or folder. A full disk becomes one DiskFullError line naming
the path and the space left, instead of a traceback.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, TypeVar

from segcore.core.errors import UserError


class DiskFullError(UserError, OSError):
    """No space left on the device a pipeline output is written to."""


def _free_mb(path: Path) -> float:
    try:
        return shutil.disk_usage(path).free / 2**20
    except OSError:
        return float("nan")


def _disk_full(err: BaseException, path: Path) -> DiskFullError | None:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on the device writing {path} ({_free_mb(path.parent):.1f} MB free); "
                             "free some space and rerun")
    return None


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + ".tmp")


def write_bytes(path: Path | str, data: bytes) -> None:
    """``data`` into ``path`` through ``<path>.tmp``; the temp file is removed if the write fails."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # a full disk shows here at the latest, not after the rename
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        full = _disk_full(err, path)
        if full is not None:
            raise full from None
        raise


def write_text(path: Path | str, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path | str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def torch_save(obj: Any, path: Path | str) -> None:
    """torch.save through memory, then one plain write: torch's own writer reports a full disk as an
    opaque RuntimeError, and this way the temp file is ours to remove."""
    import torch  # here, not at the top: the device stage writes its JSON without paying torch's import

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())


T = TypeVar("T")


def build_dir(out: Path | str, build: Callable[[Path], T]) -> T:
    """Run ``build(tmp)`` on a fresh ``<out>.tmp`` folder, then replace ``out`` with it.

    Readers never see a half-built folder; a failure removes the temp folder and leaves ``out``
    as it was. Returns what ``build`` returns.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        result = build(tmp)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        full = _disk_full(err, out)
        if full is not None:
            raise full from None
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return result
def link_or_copy(src: Path | str, dst: Path | str) -> None:
    """Hard-link ``src`` to ``dst`` (no second copy of a large file), copying where links fail."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
