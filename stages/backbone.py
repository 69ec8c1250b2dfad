"""Stage backbone@<arch>: pretrained classifier -> fc layers convolutionalised -> backbone record."""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.pipeline import cli
from segcore.pipeline.backbone import make_backbone


def main(argv=None) -> None:
    p = cli.parser(__doc__)
    p.add_argument("arch", help="vgg16, alexnet or googlenet (segcore.models.backbone.ARCHS)")
    p.add_argument("--out", type=Path, required=True, help="backbone record (.pt)")
    p.add_argument("--archives", type=Path,
                   help="where the Caffe VGG16 weights are placed by hand or downloaded (needed for weights: caffe)")
    args = p.parse_args(argv)
    summary = make_backbone(cli.view_from(args), args.arch, args.out, progress=not args.no_progress,
                            archives=args.archives)
    print(f"backbone {args.arch}: {summary}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
