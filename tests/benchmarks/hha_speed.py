"""Benchmark (not a test): HHA encoding time of one 480x640 frame on one core.

Target: at most 0.1 s per frame (a line-by-line port of the MATLAB code: about 2.6 s).
Uses the golden NYUDv2 frame in ../shared/testdata/nyud-hha when present, else a synthetic room.
Run:  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tests/benchmarks/hha_speed.py
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

from segcore.core.device import cpu_model
from segcore.data.hha import NYU_CAMERA, hha

GOLDEN = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "nyud-hha"


def frame() -> tuple[np.ndarray, np.ndarray, str]:
    """Filled depth (m) and missing mask of one 480x640 frame, and where it came from."""
    if (GOLDEN / "0.png").exists():
        from PIL import Image

        depth = np.asarray(Image.open(GOLDEN / "0.png")).astype(np.float64) / 10_000
        raw = np.asarray(Image.open(GOLDEN / "0_raw.png"))
        return depth, raw == 0, "golden NYUDv2 frame"
    rng = np.random.default_rng(0)
    rows = np.arange(1, 481)[:, None] * np.ones((1, 640))
    depth = np.where(rows > 300, 130 * 519.5 / np.maximum(rows - 253.7, 1) / 100, 4.0).clip(0.5, 4.0)
    return depth, rng.random(depth.shape) < 0.2, "synthetic room"


def main() -> None:
    depth, missing, source = frame()
    for label, mask in (("no missing mask", None), ("raw-depth missing mask", missing)):
        hha(depth, NYU_CAMERA, mask)  # warm-up
        times = []
        for _ in range(10):
            start = time.perf_counter()
            hha(depth, NYU_CAMERA, mask)
            times.append(time.perf_counter() - start)
        print(f"HHA {depth.shape[0]}x{depth.shape[1]} ({source}, {label}): median {statistics.median(times):.3f} s, "
              f"min {min(times):.3f} s per frame over 10 runs; target 0.1 s")
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"on {cpu_model()}, OMP_NUM_THREADS={threads}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
