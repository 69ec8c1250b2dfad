"""Train a tiny FCN-8s for a few steps with the pipeline's own loop; print the weights' sha256 as JSON.

The golden test (tests/test_numerics.py) runs this in a fresh process with the portable numerics'
pins in its environment and compares the hash with tests/golden/portable.json, which holds one hash
per CPU model it was made on: on a recorded CPU model the hash must come back; on a new one, whether
it equals another model's hash is the cross-machine check of runtime.numerics.

Run:  python tests/golden/train_hash.py            (under the numerics this shell gives it)
      python tests/golden/train_hash.py --portable (pins put in force first, as a stage would)
      python tests/golden/train_hash.py --portable --record   (and record it for this CPU model)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from segcore.core import machine, numerics
from segcore.core.device import describe
from segcore.models.registry import build_model
from segcore.train.loop import TrainSpec, train
from segcore.train.runtime import Runtime

STEPS = 12


def toy_set(n: int = 6, size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """Images with a brighter left half (class 1) on noise, a void column in the middle."""
    g = torch.Generator().manual_seed(7)
    items = []
    for i in range(n):
        x = torch.rand(3, size, size, generator=g)
        y = torch.zeros(size, size, dtype=torch.long)
        y[:, : size // 2] = 1
        x[0, :, : size // 2] += 1.0
        y[:, size // 2] = 255
        items.append((x, y, f"img{i}"))
    return items


def weights_hash(model: torch.nn.Module) -> str:
    """sha256 over every tensor of the state dict, in name order, as raw little-endian bytes."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


GOLDEN_FILE = Path(__file__).with_name("portable.json")


def run() -> dict:
    torch.manual_seed(0)
    model = build_model("fcn8s", n_classes=2, width=1 / 16)
    spec = TrainSpec(lr=1e-3, momentum=0.9, weight_decay=5e-4, bias_lr_mult=2.0, batch_size=2, iterations=STEPS,
                     normalise_loss=True, val_every=STEPS, checkpoint_every=STEPS, seed=0, optimizer="adam")
    with tempfile.TemporaryDirectory() as tmp:
        last = train(model, toy_set(), toy_set(2), spec, n_classes=2, checkpoint=Path(tmp) / "ckpt.pt",
                     fingerprint="golden", runtime=Runtime(torch.device("cpu")), progress=False)
    return {"sha256": weights_hash(model), "mean_iu": last["mean_iu"], "steps": STEPS, "torch": torch.__version__,
            "numerics": numerics.in_force(), "device": describe("cpu"), "cpu": cpu_key()}


def cpu_key() -> str:
    """'AuthenticAMD family 25 model 17': the CPU model a hash belongs to (a VM's name alone may not tell)."""
    ident = machine.cpu_identity()
    return f"{ident['vendor']} family {ident['family']} model {ident['model']}"


def record(run: dict, path: Path = GOLDEN_FILE) -> None:
    """Put ``run`` into ``path`` as the hash of its CPU model (replacing that model's earlier entry)."""
    golden = json.loads(path.read_text()) if path.exists() else {"runs": []}
    golden["runs"] = [r for r in golden["runs"] if r["cpu"] != run["cpu"]] + [run]
    path.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--portable", action="store_true", help="put the portable pins in force first (restarts)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--record", action="store_true", help=f"record the hash for this CPU model in {GOLDEN_FILE.name}")
    args = p.parse_args(argv)
    if args.portable:
        numerics.enforce(numerics.Numerics("portable", args.threads))
    result = run()
    if args.record:
        record(result)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
