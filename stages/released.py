"""Stage released_<data set>@<net>: one of the FCN authors' released nets, converted and scored here."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.released_status import not_selected


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("net", help="a name of segcore.models.released.RELEASED")
    p.add_argument("--data", type=Path, required=True, help="the data set the net's reference scores it on")
    p.add_argument("--hha", type=Path, default=None, help="hha stage output (the NYUD HHA and color-HHA nets)")
    p.add_argument("--archives", type=Path, required=True, help="download folder: the .caffemodel placed or fetched")
    p.add_argument("--out", type=Path, required=True, help="folder of the converted model.pt")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON for `dvc metrics show`")
    p.add_argument("--eval-dir", type=Path, required=True, help="the evaluation's record and figure predictions")
    args = p.parse_args(argv)
    view = cli.view_from(args)
    if view["net"] != args.net:
        raise cli.ConfigError(f"{args.view} holds the params of {view['net']}, not {args.net}")
    if not view["selected"]:
        not_selected(view, args.out, args.metrics, args.eval_dir)
        print(f"{args.net}: not selected (released.nets.{view['source']} in params.yaml)")
        return
    # Only a net that runs imports torch and the nets (segcore.pipeline.released_status says why).
    from segcore.pipeline.released import run_released
    from segcore.report import results
    from segcore.train.runtime import from_view

    start = time.perf_counter()
    metrics = run_released(view, args.archives, args.data, args.out, args.metrics, args.eval_dir,
                           device=str(from_view(view["runtime"]).device), hha_root=args.hha,
                           progress=not args.no_progress)
    print(f"{args.net}: {results.headline(metrics)} (converted and evaluated in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
