"""Stage report: regenerate reports/table1.md, table2.md, table3.md and their figures from the metrics."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.report.tables import build_reports


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True, help="folder of metrics/<experiment>.json")
    p.add_argument("--eval", type=Path, required=True, help="folder of eval/<experiment>/")
    p.add_argument("--models", type=Path, required=True, help="folder of models/<experiment>/live and backbone/")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    for path in build_reports(cli.params_from(args), args.data, args.metrics, args.eval, args.models, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
