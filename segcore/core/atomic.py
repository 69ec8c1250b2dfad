"""Write files so that a reader (or a killed run) never sees half of one: temp name, then rename."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, TypeVar


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + ".tmp")


def write_text(path: Path | str, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path | str, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def torch_save(obj: Any, path: Path | str) -> None:
    import torch  # here, not at the top: the device stage writes its JSON without paying torch's import

    path = Path(path)
    tmp = _tmp(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
