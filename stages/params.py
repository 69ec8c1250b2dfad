"""Stage params: validate the whole of params.yaml, then write each stage's resolved params.

Every other stage depends on its own file under --out, so a bad value stops the run here, before
any stage has touched its outputs, and a stage reruns exactly when a value it reads changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore.config.params import load_params
from segcore.config.schema import ConfigError
from segcore.core import atomic
from segcore.pipeline import cli
from segcore.pipeline.views import all_views, dumps


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    p.add_argument("--out", type=Path, required=True, help="folder of resolved params, one JSON file per stage")
    args = p.parse_args(argv)
    try:
        views = all_views(load_params(args.params))
    except ConfigError as err:  # after `dvc exp run -S key=bad` the bad value stays in the file: name the way back
        raise ConfigError(f"{err}; {args.params} keeps this value until you fix it: git checkout {args.params} "
                          f"restores the committed one") from None

    def write(tmp: Path) -> None:
        for rel, view in views.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(dumps(view))

    atomic.build_dir(args.out, write)
    print(f"params: {len(views)} resolved views in {args.out}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
