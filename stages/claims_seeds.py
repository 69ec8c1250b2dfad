"""Not a DVC stage: run the pipeline for several seeds and write reports/claims-seeds.md.

`make claims-seeds` runs it. Each seed is a DVC experiment (`dvc exp run --temp -S seed=N`), so
`dvc exp show` lists them too; a seed already run for the current commit is reused.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.seeds import claims_over_seeds


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=Path("reports/claims-seeds.md"))
    args = p.parse_args(argv)
    print(claims_over_seeds(args.seeds, Path.cwd(), args.out))


if __name__ == "__main__":
    sys.exit(cli.run(main))
