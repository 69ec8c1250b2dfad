"""Forward timing: trials counted, device named, variants only where the device has them."""

import pytest
import torch

from segcore.models.registry import build_model
from segcore.timing import time_forward, time_variants


def test_time_forward_reports_mean_spread_and_device():
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    r = time_forward(model, size=40, trials=3, warmup=1)
    assert r["trials"] == 3 and r["mean_ms"] > 0 and r["std_ms"] >= 0
    assert r["device"].startswith("CPU: ") and "threads" in r["device"]
    assert r["dtype"] == "float32" and r["torch"] == torch.__version__


def test_cpu_has_only_fp32_and_bad_trials_are_refused():
    model = build_model("fcn-alexnet", n_classes=3, width=1 / 16)
    assert list(time_variants(model, 40, 1, 0, "cpu")) == ["fp32"]
    with pytest.raises(ValueError, match="trials must be >= 1, got 0"):
        time_forward(model, 40, 0, 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_adds_channels_last_half_precision():
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    assert len(time_variants(model, 64, 2, 1, "cuda")) == 2
