"""The timing stage: forward time of the full-size nets on the machine at hand (Tables 1 and 3)."""

from __future__ import annotations

from pathlib import Path

import torch

from segcore.data.voc import NUM_CLASSES
from segcore.report import results
from segcore.models.registry import build_model
from segcore.report.timing import time_models

# FCN-8s for Table 3; the three nets of Table 1 (FCN-VGG16 is fcn32s).
TIMED_MODELS = ("fcn8s", "fcn-alexnet", "fcn32s", "fcn-googlenet")


def time_paper_nets(view: dict, out: Path, record: Path, device: str = "cpu") -> dict:
    """Forward times of the full-size nets (whatever the profile) on ``device``: mean and std (ms) into
    ``out`` (metrics JSON), trials, size, dtype and machine into ``record``.

    ``view``: segcore.pipeline.views.timing, whose trial count is the paper's 20 in the paper
    profile and fewer on a laptop CPU; the count is in the result, and the tables print it.
    """
    torch.manual_seed(view["seed"])
    # Always the full-size nets: timings describe the paper's architectures, whatever the scale.
    build = lambda name: build_model(name, n_classes=NUM_CLASSES, width=1.0)  # noqa: E731
    result = time_models(build, TIMED_MODELS, view["size"], view["trials"], view["warmup"], device)
    results.write(result, {}, Path(out), Path(record))
    return result
