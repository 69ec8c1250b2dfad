"""Not a DVC stage: print every net's headline scores, one line per net and split (segcore.report.scores).

A terminal-sized view of metrics/: `dvc metrics show` prints each file as one row of hundreds of columns.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.report.scores import scores_table


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--metrics", type=Path, default=Path("metrics"), help="folder of metrics/<net>.json")
    p.add_argument("--eval", type=Path, default=Path("eval"),
                   help="folder of eval/<net>/record.json, where present: flags nets that predict one class")
    args = p.parse_args(argv)
    print(scores_table(args.metrics, args.eval))


if __name__ == "__main__":
    sys.exit(cli.run(main))
