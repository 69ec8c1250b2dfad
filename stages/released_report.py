"""Stage released_report: reports/released.md, each released net's published score beside ours.

Its own stage, not part of `report`: it needs the released nets' scores only, so on the real data
`dvc repro released_report` checks the published numbers without training anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.report.released import build_page, page_params


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--metrics", type=Path, required=True, help="folder of metrics/released-<net>.json")
    p.add_argument("--eval", type=Path, required=True, help="folder of eval/released-<net>/")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    print(f"wrote {build_page(page_params(cli.view_from(args)), args.metrics, args.eval, args.out)}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
