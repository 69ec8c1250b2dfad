"""Where a training run is, for a person watching a log rather than a terminal.

On a terminal tqdm draws its bar; in a log (DVC's output captured to a file, CI) the bar is off, so
a line is printed every ``every_s`` seconds instead. Independently, a large net training on the
CPU gets one warning after its first step, with the run's duration estimated from that step: the
paper profile on a laptop would otherwise look like a hang for days.
"""

from __future__ import annotations

import sys
import time

from segcore.core.progress import EVERY_S, duration

# Above this many parameters a CPU step takes seconds: every full-size net (FCN-GoogLeNet: 5.6M, U-Net:
# 31M, FCN-VGG16: 134M); the smoke nets have under 1M.
LARGE = 2_000_000


class StepReport:
    """Call :meth:`step` after each optimizer step; prints the CPU warning and, off a terminal, progress lines."""

    def __init__(self, total: int, start: int, *, device_type: str, n_params: int, enabled: bool = True,
                 every_s: float = EVERY_S, tty: bool | None = None, clock=time.perf_counter, out=None):
        self.total, self.start, self.every_s = total, start, every_s
        self.warn_cpu = enabled and device_type == "cpu" and n_params > LARGE
        self.n_params = n_params
        self.lines = enabled and not (sys.stderr.isatty() if tty is None else tty)
        self.clock, self.out = clock, out
        self.t0 = self.last = clock()

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def step(self, done: int, loss: float) -> None:
        now = self.clock()
        elapsed, steps = now - self.t0, done - self.start
        if self.warn_cpu and steps == 1:
            self._print(f"warning: a net of {self.n_params / 1e6:.1f}M parameters is training on the CPU: "
                        f"its first step took {elapsed:.1f} s, so its {self.total - self.start} step"
                        f"{'s' if self.total - self.start != 1 else ''} would take "
                        f"about {duration(elapsed * (self.total - self.start))}. The paper profile expects a GPU "
                        "(docs/paper-profile.md).")
        if self.lines and (now - self.last >= self.every_s) and done < self.total:
            left = elapsed / steps * (self.total - done)
            self._print(f"train: step {done}/{self.total}, loss {loss:.3f}, {duration(elapsed)} elapsed, "
                        f"about {duration(left)} left")
            self.last = now
