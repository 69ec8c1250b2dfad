"""Stage download@<dataset>: fetch and verify the real data set, or write its synthetic twin."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.stages import download_voc
from segcore.pipeline.nyud import download_nyud
from segcore.pipeline.siftflow import download_siftflow
from segcore.pipeline.unet import download_isbi

DATASETS = {"voc": download_voc, "nyud": download_nyud, "siftflow": download_siftflow, "isbi": download_isbi}


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--out", type=Path, required=True, help="extracted data set root")
    p.add_argument("--archives", type=Path, required=True, help="where archives are downloaded or placed by hand")
    args = p.parse_args(argv)
    params = cli.params_from(args)
    DATASETS[args.dataset](params, args.out, args.archives, progress=not args.no_progress)
    print(f"{args.dataset}: {params.data_source} data ready in {args.out}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
