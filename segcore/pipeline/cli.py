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
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def view_from(args: argparse.Namespace) -> dict:
    """The stage's resolved params (segcore.pipeline.views); the error names the file and its writer."""
    try:
        return json.loads(Path(args.view).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read resolved params {args.view} (written by the params stage): {err}") from None
