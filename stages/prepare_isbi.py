"""Stage prepare_isbi: ISBI 2012 stacks as arrays, with the held-out training slices named."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.unet import prepare_isbi


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--src", type=Path, required=True, help="download@isbi's output (TIFFs or isbi.h5)")
    p.add_argument("--out", type=Path, required=True, help="prepared folder")
    args = p.parse_args(argv)
    sizes = prepare_isbi(cli.params_from(args), args.src, args.out)
    print(f"isbi prepared in {args.out}: {sizes}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
