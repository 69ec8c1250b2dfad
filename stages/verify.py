"""Not a DVC stage: `make verify`, the reviewer's command. Rebuild the committed pipeline from scratch
in a temporary clone of HEAD (or in the workspace with --workspace) and write reports/verify.md:
every output byte-identical or not, every score committed beside rebuilt, both machines and their
numerics, both runs' claims, and one last line saying whether HEAD's results were reproduced.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.verify import verify


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--workspace", action="store_true",
                   help="rebuild this workspace itself (dvc repro --force) instead of a temporary clone of HEAD")
    p.add_argument("--keep", action="store_true", help="keep the temporary clone to look at")
    p.add_argument("--out", type=Path, default=Path("reports/verify.md"), help="the page (not committed)")
    args = p.parse_args(argv)
    page = verify(Path.cwd(), args.out, workspace=args.workspace, keep=args.keep)
    print(f"verify: {args.out} written")
    print(page.rstrip().splitlines()[-1].strip("*"))


if __name__ == "__main__":
    sys.exit(cli.run(main))
