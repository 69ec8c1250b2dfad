"""Stage prepare_siftflow: SIFT Flow labels shifted to void 255, unannotated images dropped, splits written."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.siftflow import prepare_siftflow


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--src", type=Path, required=True, help="download@siftflow's output (holds SiftFlowDataset/)")
    p.add_argument("--out", type=Path, required=True, help="prepared data set folder")
    args = p.parse_args(argv)
    sizes = prepare_siftflow(cli.params_from(args), args.src, args.out)
    print(f"siftflow prepared in {args.out}: {sizes}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
