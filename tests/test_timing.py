"""Forward timing: trials counted, device named, variants only where the device has them."""

import pytest
import torch

from segcore.models.registry import build_model
from segcore.report.timing import time_forward, time_models, time_variants


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


def test_mixed_precision_keeps_weights_and_says_so_in_dtype():
    # bf16 autocast exists on CPU too, so the variant's bookkeeping is testable here
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    r = time_forward(model, 40, 1, 0, autocast=torch.bfloat16, channels_last=True)
    assert r["dtype"] == "bfloat16 autocast" and r["channels_last"] is True
    assert next(model.parameters()).dtype == torch.float32


def test_time_models_builds_each_net_and_keys_the_figures_by_name():
    built = []

    def build(name):
        built.append(name)
        return build_model(name, n_classes=3, width=1 / 16)

    result = time_models(build, ["fcn-alexnet", "fcn-googlenet"], 40, 1, 0)
    assert built == ["fcn-alexnet", "fcn-googlenet"] and list(result) == built
    assert all(r["size"] == 40 and r["trials"] == 1 for r in result.values())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_adds_channels_last_and_mixed_precision():
    model = build_model("fcn32s", n_classes=3, width=1 / 16)
    variants = time_variants(model, 64, 2, 1, "cuda")
    assert list(variants)[:2] == ["fp32", "channels_last_fp32"] and len(variants) == 3
