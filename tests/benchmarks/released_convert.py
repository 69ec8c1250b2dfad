"""Benchmark (not a test): converting a full-size released FCN-8s file, as `python -m segcore.released` does.

Run: python tests/benchmarks/released_convert.py [--size W H]   (CPU; about 3 GB of memory, 1.1 GB of disk)

Writes a full-width voc-fcn8s .caffemodel (the released layout, ~540 MB) from a directly built net
with random weights into a temp folder, times the command line converting it (wall time, a fresh
process as a user runs it, sha256 included), loads the model file and prints the largest |difference|
between its logits and the directly built net's on one W x H image (default 500 x 375, a typical VOC
image). The temp folder is removed at the end.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test-side writer of the released layout

from caffe_writer import write_released  # noqa: E402

from segcore.core.machine import cpu_line  # noqa: E402
from segcore.data.preprocess import CAFFE_VGG16  # noqa: E402
from segcore.models.modelfile import load_model  # noqa: E402
from segcore.models.registry import build_model  # noqa: E402

NAME = "voc-fcn8s"


def random_fcn8s(seed: int = 0) -> nn.Module:
    """Full-width FCN-8s, every learnable conv random (score layers too), upsampling fixed bilinear."""
    torch.manual_seed(seed)
    model = build_model("fcn8s", n_classes=21)
    with torch.no_grad():
        for module in model.modules():
            if type(module) is nn.Conv2d:
                module.weight.normal_(0, (2 / module.weight[0].numel()) ** 0.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=2, default=(500, 375), metavar=("W", "H"))
    args = p.parse_args()
    print(f"cpu: {cpu_line()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    direct = random_fcn8s()
    with tempfile.TemporaryDirectory(prefix="released-bench-") as tmp:
        path, out = Path(tmp) / "fcn8s-heavy-pascal.caffemodel", Path(tmp) / "model.pt"
        start = time.perf_counter()
        write_released(path, NAME, direct)
        print(f"wrote {path.name}: {path.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - start:.1f} s "
              "(test writer)")
        command = [sys.executable, "-m", "segcore.released", str(path), "--net", NAME, "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"conversion failed: {done.stderr.strip()}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
        print(f"python -m segcore.released ... --net {NAME}: {wall:.1f} s wall (import, read, check, sha256, "
              f"save), peak RSS {peak:.2f} GiB, model file {out.stat().st_size / 2**20:.1f} MiB")
        loaded, preprocess, _ = load_model(out)
    w, h = args.size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with torch.no_grad():
        ours = loaded(preprocess(image)[None])
        reference = direct(CAFFE_VGG16(image)[None])
    print(f"{w} x {h} input: logits {tuple(ours.shape)}, max |converted - direct| = "
          f"{(ours - reference).abs().max().item():.3g} (logits up to {reference.abs().max().item():.3g})")


if __name__ == "__main__":
    main()
