"""Stage timing: forward time of the full-size nets on one 500x500 input (Tables 1 and 3)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from segcore import atomic, cli
from segcore.device import pick_device
from segcore.models.registry import build_model
from segcore.timing import time_variants

# FCN-8s for Table 3; the three Table 1 nets (FCN-VGG16 is fcn32s).
TIMED = ("fcn8s", "fcn-alexnet", "fcn32s", "fcn-googlenet")


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out", type=Path, required=True, help="timing metrics JSON")
    args = p.parse_args(argv)
    params = cli.params_from(args)
    t = params.timing
    trials = t.paper_trials if params.profile == "paper" else t.smoke_trials
    torch.manual_seed(params.seed)
    # Always the full-size nets: timings describe the paper's architectures, whatever the profile.
    result = {}
    for name in TIMED:
        model = build_model(name, n_classes=21, width=1.0, learn_upsampling=False)
        variants = time_variants(model, t.size, trials, t.warmup, pick_device())
        result[name] = variants.pop("fp32")  # Table 3 and Table 1 read the fp32 figure
        result.update({f"{name}_{k}": v for k, v in variants.items()})
        del model
    atomic.write_json(args.out, result)
    print(f"timing: {result}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
