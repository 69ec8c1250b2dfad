"""Stage evaluate@<experiment>: confusion matrix at native resolution -> the paper's four metrics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.report import results
from segcore.pipeline import cli
from segcore.pipeline.evaluate import evaluate_experiment
from segcore.train.runtime import from_view


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("experiment")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="model.pt written by train@<experiment>")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON for `dvc metrics show`")
    p.add_argument("--eval-dir", type=Path, required=True, help="per-class IU, figure predictions")
    p.add_argument("--hha", type=Path, default=None, help="hha stage output (NYUD nets that read HHA)")
    args = p.parse_args(argv)
    view = cli.view_from(args)
    if view["experiment"] != args.experiment:
        raise cli.ConfigError(f"{args.view} holds the params of {view['experiment']}, not {args.experiment}")
    runtime = from_view(view["runtime"])
    start = time.perf_counter()
    metrics = evaluate_experiment(view, args.data, args.model, args.metrics, args.eval_dir,
                                  device=str(runtime.device), hha_root=args.hha, progress=not args.no_progress)
    print(f"{args.experiment}: {results.headline(metrics)} (evaluated in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
