"""Stage download@<dataset>: fetch and verify the real data set, or write its synthetic twin."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.data import download


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("dataset", help="a key of segcore.data.specs.DATASETS")
    p.add_argument("--out", type=Path, required=True, help="extracted data set root")
    p.add_argument("--archives", type=Path, required=True, help="where archives are downloaded or placed by hand")
    args = p.parse_args(argv)
    view = cli.view_from(args)
    start = time.perf_counter()
    download(args.dataset, view, args.out, args.archives, progress=not args.no_progress)
    print(f"{args.dataset}: {view['source']} data ready in {args.out} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
