"""Stage hha: every prepared NYUD depth map encoded as HHA (disparity, height, angle), frames in parallel."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.data import encode_hha


def main(argv=None) -> None:
    p = cli.parser(__doc__)  # the view holds the numerics only; cli.run pins them
    p.add_argument("--prepared", type=Path, required=True, help="prepare@nyud output")
    p.add_argument("--out", type=Path, required=True, help="folder of <name>.png HHA images")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    args = p.parse_args(argv)
    cli.view_from(args)  # a missing or unreadable view is one line, before any frame is encoded
    start = time.perf_counter()
    count = encode_hha(args.prepared, args.out, args.workers, progress=not args.no_progress)
    print(f"hha: {count} frames encoded into {args.out} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
