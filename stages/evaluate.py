"""Stage evaluate@<experiment>: confusion matrix at native resolution -> the paper's four metrics."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.stages import evaluate_experiment


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("experiment")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="model.pt written by train@<experiment>")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON for `dvc metrics show`")
    p.add_argument("--eval-dir", type=Path, required=True, help="per-class IU, figure predictions")
    p.add_argument("--hha", type=Path, default=None, help="hha stage output (NYUD nets that read HHA)")
    args = p.parse_args(argv)
    params = cli.params_from(args)
    runtime = cli.runtime_from(params)
    metrics = evaluate_experiment(params, args.experiment, args.data, args.model, args.metrics, args.eval_dir,
                                  keep=params.evaluate.figure_images, device=str(runtime.device), hha_root=args.hha,
                                  channels_last=runtime.channels_last)
    print(f"{args.experiment}: {metrics}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
