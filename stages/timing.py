"""Stage timing: forward time of the full-size nets on one 500x500 input (Tables 1 and 3), on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.core.device import pick_device
from segcore.pipeline import cli
from segcore.pipeline.timing import time_paper_nets


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--machine", type=Path, required=True,
                   help="the device stage's description of this machine (a dependency: timings rerun when it changes)")
    p.add_argument("--out", type=Path, required=True, help="timing metrics JSON (mean and std, ms)")
    p.add_argument("--record", type=Path, required=True, help="trials, input size, dtype and machine of each timing")
    args = p.parse_args(argv)
    view = cli.view_from(args)
    device = pick_device(view["device"])
    result = time_paper_nets(view, args.out, args.record, str(device))
    for name, r in result.items():
        spread = f" ± {r['std_ms']:.1f} (mean ± std of {r['trials']} trials)" if r["trials"] > 1 else " (1 trial)"
        print(f"{name}: {r['mean_ms']:.1f} ms{spread}, {r['dtype']}, on {r['device']}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
