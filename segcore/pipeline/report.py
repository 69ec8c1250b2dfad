"""The report stage's params: the report view read back with the attribute names of Params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segcore.config.params import TrainScale, Twin, UnetScale
from segcore.config.schema import build


@dataclass(frozen=True)
class Net:
    learn_upsampling: bool


@dataclass(frozen=True)
class ReportParams:
    """What the report stage reads (segcore.pipeline.views.report), named as in segcore.config.params.Params,
    so the table builders take either."""

    profile: str
    data_source: str
    scale_name: str
    lr: float
    width: float
    net: Net
    recipe: TrainScale
    unet_recipe: UnetScale
    twin: Twin | None


def report_params(view: dict[str, Any]) -> ReportParams:
    v = dict(view)
    v["net"] = {"learn_upsampling": v.pop("learn_upsampling")}
    return build(ReportParams, v)
