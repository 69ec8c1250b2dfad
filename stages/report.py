"""Stage report: regenerate reports/ (Tables 1-5, U-Net, figures) from the metrics, models and evaluations."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.report import report_params
from segcore.report.tables import build_reports


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True, help="folder of metrics/<experiment>.json")
    p.add_argument("--eval", type=Path, required=True, help="folder of eval/<experiment>/")
    p.add_argument("--models", type=Path, required=True, help="folder of models/<experiment>/live and backbone/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--claims-seeds", type=Path, default=None,
                   help="reports/claims-seeds.md (read, not written): marked stale in the index and claims.md when "
                        "the code or params its fingerprint names have changed; those paths are this stage's deps")
    p.add_argument("--index-also", type=Path, nargs="*", default=[],
                   help="pages other stages write (reports/released.md), listed in the index; they are deps")
    args = p.parse_args(argv)
    params = report_params(cli.view_from(args))
    for path in build_reports(params, args.data, args.metrics, args.eval, args.models, args.out, args.claims_seeds,
                              args.index_also):
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
