"""Trained-model files: weights plus what is needed to rebuild and feed the net."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from segcore.core.errors import UserError
from segcore.core import atomic
from segcore.models.registry import build_model
from segcore.data.preprocess import Preprocess

REQUIRED = ("arch", "n_classes", "width", "learn_upsampling", "state_dict", "preprocess")


class ModelFileError(UserError, ValueError):
    """A model file is missing, unreadable or not one of ours."""


def save_model(path: Path, model: nn.Module, *, arch: str, n_classes: int, width: float,
               learn_upsampling: bool, preprocess: Preprocess, **meta: object) -> None:
    """Write weights and build arguments atomically (temp name, then rename)."""
    record = {"arch": arch, "n_classes": n_classes, "width": width, "learn_upsampling": learn_upsampling,
              "state_dict": model.state_dict(), "preprocess": preprocess.to_dict(), **meta}
    atomic.torch_save(record, path)


def read_model_record(path: Path) -> dict:
    """The raw record; the error names the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist (run the stage that trains it)")
    try:
        record = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for torn or foreign files
        raise ModelFileError(f"cannot read model file {path}: {type(err).__name__}: {err}") from None
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
