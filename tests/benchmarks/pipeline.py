"""Benchmark (not a test): the default pipeline from scratch, total and per-stage wall time.

Run: python tests/benchmarks/pipeline.py            (a temp clone of this checkout's HEAD)
     python tests/benchmarks/pipeline.py --keep     (keep the clone to look at)

Clones the committed HEAD into a temporary folder (uncommitted changes are not measured), runs
`dvc repro` there with this environment's dvc and python, and prints each stage's wall time
(from its 'Running stage' line to the next) and the total, with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).with_name("dvc"))


def timed_repro(work: Path, env: dict, args: tuple[str, ...] = ()) -> tuple[str, dict[str, float]]:
    """`dvc repro`'s log and each stage's wall time; raises with the log's tail when it fails."""
    proc = subprocess.Popen([DVC, "repro", *args], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, times, current, since = [], {}, None, time.perf_counter()
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Running stage '"):
            now = time.perf_counter()
            if current:
                times[current] = now - since
            current, since = line.split("'")[1], now
    proc.wait()
    if current:
        times[current] = time.perf_counter() - since
    log = "".join(lines)
    if proc.returncode:
        raise RuntimeError(f"dvc repro failed (exit {proc.returncode}):\n{log[-4000:]}")
    return log, times


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} threads)"
    except OSError:
        pass
    return f"unknown CPU ({os.cpu_count()} threads)"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="segcore-bench-"))
    work = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=work, capture_output=True, text=True).stdout
    print(f"dvc repro from scratch at {head.strip()} on {cpu_name()}", flush=True)
    start = time.perf_counter()
    try:
        _, times = timed_repro(work, env)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - start
    for stage, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"{stage:36s} {seconds:7.1f} s")
    print(f"{'total':36s} {total:7.1f} s ({total / 60:.1f} min, {len(times)} stages)")
    if args.keep:
        print(f"kept {work}")


if __name__ == "__main__":
    main()
