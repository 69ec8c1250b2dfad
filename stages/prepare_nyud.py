"""Stage prepare_nyud: NYUD frames cropped, relabelled (40 classes) and named as FCN / Gupta et al."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.nyud import prepare_nyud


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--src", type=Path, required=True, help="folder of the three NYUD .mat files")
    p.add_argument("--out", type=Path, required=True, help="prepared data set folder")
    args = p.parse_args(argv)
    sizes = prepare_nyud(cli.params_from(args), args.src, args.out)
    print(f"nyud prepared in {args.out}: {sizes}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
