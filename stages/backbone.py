"""Stage backbone@<arch>: pretrained classifier -> fc layers convolutionalised -> backbone record."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.backbone import make_backbone


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("arch", help="vgg16, alexnet or googlenet (segcore.models.backbone.ARCHS)")
    p.add_argument("--out", type=Path, required=True, help="backbone record (.pt)")
    p.add_argument("--archives", type=Path,
                   help="where the Caffe weights (VGG16's, AlexNet's CaffeNet) are placed by hand or downloaded "
                        "(needed for weights: caffe)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    summary = make_backbone(cli.view_from(args), args.arch, args.out, progress=not args.no_progress,
                            archives=args.archives)
    accuracy = summary.get("held_out_accuracy")
    print(f"backbone {args.arch}: {summary['source']}"
          + (f", held-out accuracy {100 * accuracy:.1f}%" if accuracy is not None else "")
          + f" ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
