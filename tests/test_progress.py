"""A run that says where it is: progress lines in a log, and a warning for a full-size net on the CPU."""

import io

from segcore.train.progress import StepReport, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run(steps_s: list[float], **kwargs) -> str:
    clock, out = Clock(), io.StringIO()
    report = StepReport(len(steps_s), 0, clock=clock, out=out, **kwargs)
    for done, seconds in enumerate(steps_s, start=1):
        clock.now += seconds
        report.step(done, 0.5)
    return out.getvalue()


def test_a_large_net_on_the_cpu_warns_once_with_the_estimated_duration():
    """Every full-size net is large, FCN-GoogLeNet's 5.6M included; the smoke nets have under 1M."""
    assert "warning:" in _run([1.0], device_type="cpu", n_params=5_600_000, tty=True)
    text = _run([4.0] * 5, device_type="cpu", n_params=134_000_000, tty=True)
    assert text.count("warning:") == 1
    assert "a net of 134.0M parameters is training on the CPU: its first step took 4.0 s" in text
    assert "its 5 steps would take about 20 s" in text and "expects a GPU" in text


def test_no_warning_for_small_nets_or_on_a_gpu():
    assert _run([4.0] * 3, device_type="cpu", n_params=500_000, tty=True) == ""
    assert _run([4.0] * 3, device_type="cuda", n_params=134_000_000, tty=True) == ""


def test_off_a_terminal_a_line_every_interval_with_the_time_left():
    text = _run([10.0] * 10, device_type="cpu", n_params=1000, tty=False, every_s=30.0)
    lines = text.splitlines()
    assert lines == ["train: step 3/10, loss 0.500, 30 s elapsed, about 70 s left",
                     "train: step 6/10, loss 0.500, 60 s elapsed, about 40 s left",
                     "train: step 9/10, loss 0.500, 90 s elapsed, about 10 s left"]
    assert _run([10.0] * 10, device_type="cpu", n_params=1000, tty=True) == ""  # tqdm's bar does it there
    assert _run([10.0] * 10, device_type="cpu", n_params=1000, tty=False, enabled=False) == ""


def test_durations_read_in_the_unit_that_fits():
    assert [duration(s) for s in (42, 780, 5.2 * 3600, 3.1 * 86400)] == ["42 s", "13 min", "5.2 h", "3.1 days"]
