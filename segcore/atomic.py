"""Write files so that a reader (or a killed run) never sees half of one: temp name, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch


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
    path = Path(path)
    tmp = _tmp(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)
