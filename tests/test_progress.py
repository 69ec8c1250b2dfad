"""A run that says where it is: progress lines in a log, and a warning for a full-size net on the CPU."""

import io

from segcore.core.progress import Progress
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


# ---------------------------------------------------------------- long phases (segcore.core.progress)


def _phase(updates: list[tuple[float, float]], total: float, unit: str, tty: bool = False) -> str:
    """Lines of one phase off a terminal: ``updates`` are (seconds taken, amount done)."""
    clock, out = Clock(), io.StringIO()
    with Progress(total, "phase", unit=unit, tty=tty, clock=clock, out=out) as shown:
        for seconds, amount in updates:
            clock.now += seconds
            shown.update(amount)
    return out.getvalue()


def test_a_long_phase_prints_a_line_every_30_seconds_off_a_terminal():
    text = _phase([(20.0, 100)] * 10, 1000, "frames")
    assert text.splitlines() == [
        "phase: 200/1000 frames, 40 s elapsed, about 3 min left",
        "phase: 400/1000 frames, 80 s elapsed, about 2 min left",
        "phase: 600/1000 frames, 2 min elapsed, about 80 s left",
        "phase: 800/1000 frames, 3 min elapsed, about 40 s left",
    ]  # none at the end: the stage's own last line says it is done
    assert _phase([(20.0, 100)] * 10, 1000, "frames", tty=True) == ""  # tqdm's bar instead
    assert _phase([(1.0, 100)] * 10, 1000, "frames") == ""  # a short phase stays quiet


def test_bytes_are_shown_in_megabytes_or_gigabytes():
    assert _phase([(31.0, 2 ** 29)], 2 ** 31, "B") == "phase: 0.5/2.0 GB, 31 s elapsed, about 93 s left\n"
    assert _phase([(31.0, 2 ** 20)], 3 * 2 ** 20, "B").startswith("phase: 1.0/3.0 MB,")


def test_checksums_and_extraction_say_where_they_are(tmp_path, monkeypatch, capsys):
    """The paper profile's silent phases: a checksum over an archive, its index, then its members."""
    import tarfile

    from segcore.core import progress
    from segcore.data.download import file_digest, safe_extract

    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a line at every update
    for i in range(3):
        (tmp_path / f"f{i}.bin").write_bytes(bytes(300_000))
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(3):
            tar.add(tmp_path / f"f{i}.bin", arcname=f"d/f{i}.bin")
    big = tmp_path / "f0.bin"
    assert file_digest(big, "sha256", chunk=100_000, progress=True) == file_digest(big, "sha256")
    assert "sha256 of f0.bin: 0.1/0.3 MB, " in capsys.readouterr().out
    safe_extract(archive, tmp_path / "out", progress=True)
    out = capsys.readouterr().out
    assert "extract a.tar.gz: 1/3 files, " in out and "extract a.tar.gz: 2/3 files, " in out
    assert (tmp_path / "out/d/f2.bin").read_bytes() == bytes(300_000)
    safe_extract(archive, tmp_path / "quiet")
    assert capsys.readouterr().out == ""


def test_a_resumed_download_estimates_from_this_run_and_an_unknown_length_shows_the_amount():
    """A download resumed at 1 of 3 GB: the time left comes from this run's rate, not from the bytes it
    found on disk; a server that sends no length gets the amount and the time so far."""
    clock, out = Clock(), io.StringIO()
    with Progress(3 * 2 ** 30, "download", unit="B", initial=2 ** 30, tty=False, clock=clock, out=out) as shown:
        clock.now = 40.0
        shown.update(2 ** 29)
    assert out.getvalue() == "download: 1.5/3.0 GB, 40 s elapsed, about 2 min left\n"
    clock, out = Clock(), io.StringIO()
    with Progress(None, "download", unit="B", tty=False, clock=clock, out=out) as shown:
        clock.now = 31.0
        shown.update(5 * 2 ** 20)
    assert out.getvalue() == "download: 5.0 MB, 31 s elapsed\n"

