"""Benchmark (not a test): what portable numerics cost, one smoke training stage side by side.

Run: python tests/benchmarks/numerics.py [--net fcn32s] [--rounds 2]   (after `make repro`: it reads
     data/voc and the backbone the pipeline built, and writes only under a temporary folder)

Runs the pipeline's own `stages/train.py <net>` with its resolved view twice over, once with
`runtime.numerics` native and once portable, alternating, and prints for each the process's wall
time (the portable run includes its restart with the pins) and the training time the stage reports,
with the CPU and its ISA level.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from segcore.core.machine import cpu_line

ROOT = Path(__file__).resolve().parents[2]


def run_stage(net: str, view: dict, mode: str, tmp: Path) -> tuple[float, float]:
    """(process wall time, the stage's own 'trained in' time) of one training run in ``mode``."""
    path = tmp / f"{net}-{mode}.json"
    path.write_text(json.dumps({**view, "numerics": {**view["numerics"], "mode": mode}}))
    out = tmp / f"out-{mode}"
    init = "models/backbone/vgg16.pt"
    cmd = [sys.executable, "stages/train.py", net, "--view", str(path), "--data", "data/voc", "--backbone", init,
           "--init", init, "--out", str(out), "--checkpoint", str(out / "checkpoint.pt"), "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    trained = float(re.search(r"trained in ([\d.]+) s", done.stdout).group(1))
    return wall, trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="fcn32s", help="a VOC net trained from the VGG16 backbone (default fcn32s)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    view = json.loads((ROOT / "resolved" / "params" / "train" / f"{args.net}.json").read_text())
    times: dict[str, list[tuple[float, float]]] = {"native": [], "portable": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for mode in times:
                times[mode].append(run_stage(args.net, view, mode, Path(tmp)))
    print(f"train@{args.net}, smoke params, {view['numerics']['threads']} threads in portable mode, on {cpu_line()}")
    for mode, runs in times.items():
        wall, trained = (statistics.median(t[i] for t in runs) for i in (0, 1))
        print(f"  {mode:9s} process {wall:6.1f} s, training {trained:6.1f} s (median of {len(runs)})")
    base, pinned = (statistics.median(t[1] for t in times[m]) for m in ("native", "portable"))
    print(f"  portable / native training time: {pinned / base:.2f}x")


if __name__ == "__main__":
    main()
