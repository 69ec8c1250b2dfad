"""Where a long phase is: a tqdm bar on a terminal, a line every 30 seconds in a log.

DVC captures a stage's output when it is not run from a terminal (CI, `dvc repro > log`), where a
bar would be off and the paper profile's long phases (checksums of 2 GB archives, extraction, the
2.9 GB NYUD .mat, HHA of 1,449 frames, evaluation) would look like a hang. Off a terminal each phase
therefore prints ``<what>: <done>/<total> <unit>, <elapsed> elapsed, about <left> left`` every
``every_s`` seconds; a phase shorter than that prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

EVERY_S = 30.0
T = TypeVar("T")


def duration(seconds: float) -> str:
    """'42 s', '13 min', '5.2 h', '3.1 days'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _amount(done: float, total: float | None, unit: str) -> str:
    """'300/1449 frames', '0.5/2.0 GB', or without a total '12.3 MB'."""
    if unit != "B":
        return f"{done:.0f}/{total:.0f} {unit}" if total is not None else f"{done:.0f} {unit}"
    scale, name = (2 ** 30, "GB") if (total or done) >= 2 ** 30 else (2 ** 20, "MB")
    return f"{done / scale:.1f}/{total / scale:.1f} {name}" if total is not None else f"{done / scale:.1f} {name}"


class Progress:
    """Count the work of one phase with :meth:`update` (or :meth:`update_to`); use as a context manager.

    ``total``: None where it is unknown (a server that sends no length); no time left is then shown.
    ``initial``: work done before this run (a resumed download), left out of the rate. ``unit``: what
    is counted ("frames", "images"; "B" for bytes, printed in MB or GB). ``tty``: whether output goes
    to a terminal (default: stderr's); ``clock`` and ``out`` are for tests.
    """

    def __init__(self, total: float | None, what: str, *, unit: str = "items", initial: float = 0,
                 enabled: bool = True, every_s: float | None = None, tty: bool | None = None,
                 clock=time.perf_counter, out=None):
        tty = sys.stderr.isatty() if tty is None else tty
        self.total, self.what, self.unit = total, what, unit
        self.every_s = EVERY_S if every_s is None else every_s
        self.lines = enabled and not tty
        self.clock, self.out = clock, out
        self.initial = self.done = initial
        self.t0 = self.last = clock()
        self.bar = tqdm(total=total, initial=initial, desc=what, unit=unit, unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000,
                        disable=not (enabled and tty), dynamic_ncols=True, leave=False)

    def update(self, n: float = 1) -> None:
        self.update_to(self.done + n)

    def update_to(self, done: float) -> None:
        self.bar.update(done - self.done)
        self.done = done
        now = self.clock()
        if self.lines and now - self.last >= self.every_s and done > self.initial and \
                (self.total is None or done < self.total):
            elapsed = now - self.t0
            left = "" if self.total is None else \
                f", about {duration(elapsed / (done - self.initial) * (self.total - done))} left"
            print(f"{self.what}: {_amount(done, self.total, self.unit)}, {duration(elapsed)} elapsed{left}",
                  file=self.out or sys.stdout, flush=True)
            self.last = now

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], what: str, *, total: int | None = None, unit: str = "items", enabled: bool = True,
          **options) -> Iterator[T]:
    """``items``, one at a time, counted by a :class:`Progress` (``total`` defaults to ``len(items)``)."""
    with Progress(len(items) if total is None else total, what, unit=unit, enabled=enabled, **options) as p:
        for item in items:
            yield item
            p.update()
