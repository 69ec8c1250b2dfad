"""Shared edges of the stage scripts: argument parsing, resolved params, one-line user errors."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from segcore.config.schema import ConfigError
from segcore.core import numerics
from segcore.core.errors import UserError


def parser(description: str, view: bool = True) -> argparse.ArgumentParser:
    """Argument parser of a stage; ``view``: the stage reads params through its resolved view file."""
    p = argparse.ArgumentParser(description=description)
    if view:
        p.add_argument("--view", type=Path, required=True,
                       help="this stage's resolved params, written by the params stage (resolved/...json)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Call a stage's main; a UserError (bad params, files, archives, checkpoints) becomes one
    'error:' line and exit status 2. Any other exception is a bug and keeps its traceback."""
    # A native crash (SIGSEGV, SIGABRT from C++) would otherwise leave only a signal number in the
    # DVC log; with faulthandler on, it prints each thread's Python stack first.
    if not faulthandler.is_enabled():  # (pytest enables its own)
        with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):  # stderr without a file
            faulthandler.enable()
    try:
        if argv is None:  # a stage process, not a test calling its main: pin the numerics its view asks for
            pin_numerics(sys.argv[1:])
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def pin_numerics(args: Sequence[str]) -> None:
    """Put in force the numerics of the view named by ``--view`` in ``args`` (segcore.core.numerics), if it
    has any; may restart the process. Before the stage's own argument parsing, which comes after its imports."""
    if "--view" not in args or args.index("--view") + 1 >= len(args):
        return
    view = read_view(Path(args[args.index("--view") + 1]))
    if "numerics" in view:
        numerics.enforce(numerics.Numerics.from_view(view["numerics"]))


def view_from(args: argparse.Namespace) -> dict:
    """The stage's resolved params (segcore.pipeline.views); the error names the file and its writer."""
    return read_view(Path(args.view))


def read_view(path: Path) -> dict:
    """A resolved view file, or one ConfigError naming it and the stage that writes it."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read resolved params {path} (written by the params stage): {err}") from None
