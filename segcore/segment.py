"""``python -m segcore.segment MODEL.pt IMAGE... --out DIR``: segment your own images with a model file.

The thin command line over segcore.pipeline.segment (docs/segment.md): per image a label map
``<stem>.png`` and an overlay ``<stem>_overlay.png`` in DIR. A bad input is one ``error:`` line and
exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from segcore.pipeline import cli
from segcore.pipeline.segment import DEVICES, segment


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m segcore.segment",
                                description="Apply a model file to images: label maps and colour overlays.")
    p.add_argument("model", type=Path, help="a model file, e.g. models/fcn8s/model.pt")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                   help="image files (any size, any format Pillow reads)")
    p.add_argument("--out", type=Path, required=True, help="folder for <stem>.png and <stem>_overlay.png (created)")
    p.add_argument("--hha", type=Path, nargs="+", default=[], metavar="HHA_PNG",
                   help="one HHA image per IMAGE, in the same order, for HHA and RGB-HHA nets")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA when present, else CPU")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    segment(args.model, args.images, args.out, hha=args.hha, device=args.device)


if __name__ == "__main__":
    # argv passed on purpose: cli.run re-pins numerics from a stage's --view only when argv is None,
    # and this command reads no view.
    sys.exit(cli.run(main, sys.argv[1:]))
