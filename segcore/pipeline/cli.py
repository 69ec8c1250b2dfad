"""Shared edges of the stage scripts: argument parsing helpers and one-line errors."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from segcore.config.schema import ConfigError
from segcore.config.params import Params, load_params

# Errors caused by the user's input (params, files, archives, checkpoints): print one line, exit 2.
# Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ValueError, FileNotFoundError)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Call a stage's main; turn input errors into one 'error:' line and exit status 2."""
    from segcore.data.download import DownloadError
    from segcore.train.loop import TrainingError

    try:
        main(argv)
    except (*USER_ERRORS, DownloadError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def params_from(args: argparse.Namespace) -> Params:
    """Validated params; raised errors name the key."""
    return load_params(args.params)


def runtime_from(params: Params):
    """This process's resolved runtime (device, precision, rank under torchrun; segcore.train.runtime)."""
    from segcore.train.runtime import resolve

    rt = params.runtime
    return resolve(rt.device, rt.precision, rt.channels_last, rt.workers)
