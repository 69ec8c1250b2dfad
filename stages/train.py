"""Stage train@<experiment>: train one net of the papers' tables from its backbone, its parent or scratch."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.train import lr_text, train_experiment
from segcore.train.loop import TrainingError
from segcore.train.runtime import finish, from_view, launch_workers, under_launcher


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("experiment", help="a key of segcore.train.experiments.EXPERIMENTS")
    p.add_argument("--data", type=Path, required=True, help="data set root (download stage output)")
    p.add_argument("--backbone", type=Path, default=None,
                   help="backbone record (preprocessing, trunk); none for a net trained from scratch (U-Net)")
    p.add_argument("--init", type=Path, nargs="+", default=[],
                   help="weights to start from: the backbone, the parent model, or one model per fusion stream; "
                        "none for a net trained from scratch")
    p.add_argument("--out", type=Path, required=True, help="output folder: model.pt and live/")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="resumable checkpoint; its folder also holds the curves while training (not a DVC output)")
    p.add_argument("--hha", type=Path, default=None, help="hha stage output (NYUD nets that read HHA)")
    args = p.parse_args(argv)
    view = cli.view_from(args)
    if view["experiment"] != args.experiment:
        raise cli.ConfigError(f"{args.view} holds the params of {view['experiment']}, not {args.experiment}")
    launch = view["runtime"]["launch"]
    if launch != "python" and not under_launcher():  # this process becomes torchrun's parent
        status = launch_workers(launch, Path(__file__), sys.argv[1:] if argv is None else list(argv))
        if status:
            raise TrainingError(f"{args.experiment}: the training processes ({launch}) exited with status {status}")
        return
    runtime = from_view(view["runtime"])  # joins the process group when started by torchrun
    start = time.perf_counter()
    try:
        result = train_experiment(view, args.data, args.backbone, args.init, args.out, args.checkpoint,
                                  runtime=runtime, progress=not args.no_progress, hha_root=args.hha)
    finally:
        finish(runtime)
    if runtime.main:
        scores = ", ".join(f"{name} {100 * result[key]:.1f}%" for key, name in
                           (("mean_iu", "validation mean IU"), ("pixel_acc", "pixel acc.")) if key in result)
        lr = lr_text(result["lr"], view.get("lr_origin"))  # how params.yaml's lr became this rate
        print(f"{args.experiment}: {scores or 'no validation scores'} at lr {lr} "
              f"(trained in {time.perf_counter() - start:.1f} s, {runtime.signature()})")


if __name__ == "__main__":
    sys.exit(cli.run(main))
