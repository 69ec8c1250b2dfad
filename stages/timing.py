"""Stage timing: forward time of the full-size FCN-8s on one 500x500 input (Table 3's column)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from segcore import atomic, cli
from segcore.device import pick_device
from segcore.models.registry import build_model
from segcore.timing import time_forward


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out", type=Path, required=True, help="timing metrics JSON")
    args = p.parse_args(argv)
    params = cli.params_from(args)
    t = params.timing
    trials = t.paper_trials if params.profile == "paper" else t.smoke_trials
    torch.manual_seed(params.seed)
    # Always the full-size net: timings describe the paper's architecture, whatever the profile.
    model = build_model("fcn8s", n_classes=21, width=1.0, learn_upsampling=False)
    result = {"fcn8s": time_forward(model, t.size, trials, t.warmup, pick_device())}
    atomic.write_json(args.out, result)
    print(f"timing: {result}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
