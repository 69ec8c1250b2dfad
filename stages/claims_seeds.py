"""Not a DVC stage: run the pipeline for several seeds and write reports/claims-seeds.md.

`make claims-seeds` runs it. Each seed is a DVC experiment (`dvc exp run --temp -S seed=N`), so
`dvc exp show` lists them too; a seed already run for the current commit, code and params is reused.
The page ends with a fingerprint of that code and params (segcore.report.fingerprint), which the
report stage checks: run `dvc repro report` afterwards, so reports/README.md and claims.md say so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.config.params import load_params
from segcore.pipeline import cli
from segcore.pipeline.seeds import claims_over_seeds
from segcore.pipeline.views import all_views


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=Path("reports/claims-seeds.md"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"),
                   help="the workspace's params, which every seed's run shares but for the seed (default: params.yaml)")
    p.add_argument("--views", default="resolved/params", help="the params stage's output folder, as dvc.yaml names it")
    args = p.parse_args(argv)
    views = all_views(load_params(args.params))  # what the params stage writes for these params
    print(claims_over_seeds(args.seeds, Path.cwd(), args.out, views, views_dir=args.views))


if __name__ == "__main__":
    sys.exit(cli.run(main))
