"""Stage device: a stable description of this machine (CPU identity and ISA level, cores, GPUs, torch),
for the timing stage.

DVC runs it on every `dvc repro` (always_changed); the timing stage reruns only when the
description differs, as in a fresh clone on another machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segcore.core import atomic
from segcore.core.machine import cpu_line, describe_machine
from segcore.pipeline import cli


def main(argv=None) -> None:
    p = cli.parser(__doc__, view=False)
    p.add_argument("--out", type=Path, required=True, help="JSON description of the machine")
    args = p.parse_args(argv)
    machine = describe_machine()
    atomic.write_text(args.out, json.dumps(machine, indent=1, sort_keys=True) + "\n")
    print(f"device: {cpu_line()}, {machine['cores']} cores, GPUs: {', '.join(machine['gpus']) or 'none'}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
