"""``python -m segcore.released CAFFEMODEL --net NAME --out MODEL.pt``: one of the FCN authors' released
.caffemodel files as a segcore model file, which `stages/evaluate.py` scores as it scores our own nets.

The thin command line over segcore.models.released (its catalogue names the nets and their files).
The conversion is strict: a file that is not exactly the named net's layout (layers, shapes, class
counts, fixed bilinear upsampling, the at-once factors) is one ``error:`` line and exit status 2,
with nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from segcore.models.released import RELEASED, write_model_file
from segcore.pipeline import cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m segcore.released",
                                description="Convert a released FCN .caffemodel into a segcore model file.")
    p.add_argument("caffemodel", type=Path, help="the downloaded file, e.g. fcn8s-heavy-pascal.caffemodel")
    # Not argparse choices: an unknown name is then one error line listing the names, as every refusal.
    p.add_argument("--net", required=True, help=f"which released net it is: {', '.join(RELEASED)}")
    p.add_argument("--out", type=Path, required=True, help="the model file to write, e.g. models/voc-fcn8s.pt")
    p.add_argument("--width", type=float, default=1.0,
                   help="tests only: read a slimmed file of the same layout (channels x WIDTH); default 1")
    p.add_argument("--sha256", help="the file's sha256 when already known (recorded instead of hashing it again)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    record = write_model_file(args.caffemodel, args.net, args.out, width=args.width, sha256=args.sha256)
    print(f"{args.out}: released {args.net} as {record['arch']} ({record['n_classes']} classes, "
          f"width {record['width']:g}), sha256 {record['released']['sha256']}")


if __name__ == "__main__":
    # argv passed on purpose: cli.run re-pins numerics from a stage's --view only when argv is None,
    # and this command reads no view.
    sys.exit(cli.run(main, sys.argv[1:]))
