"""Trained-model files: weights plus what is needed to rebuild and feed the net."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from segcore.core.errors import UserError
from segcore.core import atomic
from segcore.models.registry import build_model
from segcore.data.preprocess import Preprocess

REQUIRED = ("arch", "n_classes", "width", "learn_upsampling", "state_dict", "preprocess")


class ModelFileError(UserError, ValueError):
    """A model file is missing, unreadable or not one of ours."""


def plain(obj: Any) -> Any:
    """``obj`` with every value a tensor or a plain type, so it loads with ``weights_only=True``.

    numpy scalars become Python numbers and str subclasses (torch's TorchVersion) plain strings.
    """
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str):
        return str(obj)
    return obj


def load_plain(path: Path, what: str) -> Any:
    """torch.load with ``weights_only=True``: tensors and plain types only, so loading never runs code.

    A file holding anything else (a crafted pickle) is refused with one line, before any of it runs.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{path} is not a plain {what}: it holds objects other than tensors and plain "
                             f"types, refused without running them ({first})") from None
    except Exception as err:  # torch raises several types for torn or foreign files
        raise ModelFileError(f"cannot read {what} {path}: {type(err).__name__}: {err}") from None


def save_model(path: Path, model: nn.Module, *, arch: str, n_classes: int, width: float,
               learn_upsampling: bool, preprocess: Preprocess, **meta: object) -> None:
    """Write weights and build arguments atomically (temp name, then rename)."""
    record = {"arch": arch, "n_classes": n_classes, "width": width, "learn_upsampling": learn_upsampling,
              "state_dict": model.state_dict(), "preprocess": preprocess.to_dict(), **meta}
    atomic.torch_save(plain(record), path)


def read_model_record(path: Path) -> dict:
    """The raw record; the error names the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist (run the stage that trains it)")
    record = load_plain(path, "model file")
    missing = [k for k in REQUIRED if not isinstance(record, dict) or k not in record]
    if missing:
        raise ModelFileError(f"{path} is not a segcore model file: missing {', '.join(missing)}")
    return record


def load_model(path: Path) -> tuple[nn.Module, Preprocess, dict]:
    """Rebuild the net from its file; returns (model in eval mode, its preprocessing, the record)."""
    record = read_model_record(path)
    model = build_model(record["arch"], n_classes=record["n_classes"], width=record["width"],
                        learn_upsampling=record["learn_upsampling"], in_channels=record.get("in_channels", 3))
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as err:
        raise ModelFileError(f"weights in {path} do not fit {record['arch']}: {str(err).splitlines()[0]}") from None
    return model.eval(), Preprocess.from_dict(record["preprocess"]), record
