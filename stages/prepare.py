"""Stage prepare@<dataset>: the downloaded data set in the form training reads (splits, labels, arrays).

NYUD: 425 x 560 crops, 40 classes (void 255), the 795 / 654 splits. SIFT Flow: labels shifted to
0-based with void 255, the unannotated images dropped. ISBI 2012: stacks as arrays, the last
training slices held out (the test labels are secret).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.data import prepare


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("dataset", help="a key of segcore.data.specs.DATASETS with a preparation")
    p.add_argument("--src", type=Path, required=True, help="download@<dataset>'s output")
    p.add_argument("--out", type=Path, required=True, help="prepared data set folder")
    args = p.parse_args(argv)
    start = time.perf_counter()
    sizes = prepare(args.dataset, cli.view_from(args), args.src, args.out, progress=not args.no_progress)
    splits = ", ".join(f"{split} {count}" for split, count in sizes.items())
    print(f"{args.dataset} prepared in {args.out}: {splits} images ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
