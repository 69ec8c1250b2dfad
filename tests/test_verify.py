"""make verify's comparison (segcore.pipeline.verify): outputs by hash, the numerics of each run, the verdict."""

from segcore.pipeline.verify import Output, compare_outputs, lock_outputs, numerics_of, verdict

LOCK = """schema: '2.0'
stages:
  train@fcn8s:
    cmd: python stages/train.py fcn8s
    outs:
    - path: models/fcn8s/model.pt
      md5: {model}
  timing:
    outs:
    - path: eval/timing/record.json
      md5: {timing}
  report:
    outs:
    - path: reports/table2.md
      md5: {report}
"""


def _lock(model="a1", timing="t1", report="r1"):
    return lock_outputs(LOCK.format(model=model, timing=timing, report=report))


def test_lock_outputs_name_each_output_with_its_stage_and_hash():
    assert _lock()["models/fcn8s/model.pt"] == ("train@fcn8s", "a1")
    assert lock_outputs("") == {}


def test_reports_compare_without_their_date_row_and_measurements_are_not_counted():
    page = "| code | abc |\n| date | 2026-12-0{} 18:32 UTC |\n| x | 1 |\n"
    texts = {"reports/table2.md": (page.format(3), page.format(7))}
    rows = {o.path: o for o in compare_outputs(_lock(), _lock(timing="t2", report="r2"), texts.get)}
    assert rows["reports/table2.md"].status == "identical"
    assert rows["eval/timing/record.json"].status == "differs" and not rows["eval/timing/record.json"].counted
    assert rows["models/fcn8s/model.pt"].counted
    texts = {"reports/table2.md": (page.format(3), page.format(3).replace("| 1 |", "| 2 |"))}
    rows = {o.path: o for o in compare_outputs(_lock(), _lock(report="r2"), texts.get)}
    assert rows["reports/table2.md"].status == "differs"


def test_outputs_of_one_side_only_are_named():
    rows = compare_outputs(_lock(), {**_lock(), "models/new/model.pt": ("train@new", "n")})
    assert [o.status for o in rows if o.path == "models/new/model.pt"] == ["only rebuilt"]


DEVICE = {"cpu": "AMD EPYC", "cpu_vendor": "AuthenticAMD", "cpu_family": "25", "cpu_model": "17", "isa": "avx2",
          "cores": 2}
PORTABLE = "CPU: AMD EPYC (AuthenticAMD family 25 model 17 stepping 1, {isa}), portable numerics (avx2, 2 threads), 1 process"
NATIVE = "CPU: AMD EPYC (AuthenticAMD family 25 model 17 stepping 1, {isa}), native numerics ({isa} kernels, oneDNN native, 2 threads)"


def test_numerics_come_from_what_the_models_recorded_portable_ones_do_not_depend_on_the_cpu():
    assert numerics_of(DEVICE, [PORTABLE.format(isa="avx2")]) == "portable avx2, 2 threads"
    assert numerics_of(DEVICE, [PORTABLE.format(isa="avx2")]) == numerics_of(
        {**DEVICE, "isa": "avx512_bf16"}, [PORTABLE.format(isa="avx512_bf16")])
    native = numerics_of(DEVICE, [NATIVE.format(isa="avx2")])
    assert native.startswith("native avx2 kernels") and "AuthenticAMD family 25 model 17" in native
    assert native != numerics_of(DEVICE, [NATIVE.format(isa="avx512")])
    assert numerics_of(DEVICE, ["CPU: AMD EPYC (2 threads), 1 process, fp32"]).startswith("unrecorded")
    assert numerics_of(DEVICE, [PORTABLE.format(isa="avx2"), NATIVE.format(isa="avx2")]).startswith("mixed: ")


def test_the_verdict_line():
    same = [Output("models/fcn8s/model.pt", "train", "identical"), Output("eval/timing/record.json", "timing", "differs")]
    assert verdict(same, ("portable avx2, 2 threads",) * 2, True) == "bitwise reproduced"
    moved = [Output("models/fcn8s/model.pt", "train", "differs")]
    assert verdict(moved, ("native avx512_bf16 on A", "native avx2 on B"), True) == (
        "same claims, different numbers (different numerics: committed native avx512_bf16 on A, rebuilt native avx2 on B)")
    assert verdict(moved, ("native a", "native b"), False).startswith("different claims, different numbers")
    line = verdict(moved, ("portable avx2, 2 threads",) * 2, True)
    assert line.startswith("unexpected: same numerics (portable avx2, 2 threads), different bytes in 1 outputs")


def test_reports_name_the_last_code_commit_not_a_later_commit_of_results(tmp_path):
    """A commit of rerun results changes no code: its rebuild must name the same code as the run it rebuilds."""
    import subprocess

    from segcore.report.context import code_version

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True,
                              env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
                                   "GIT_COMMITTER_EMAIL": "t@localhost", "PATH": "/usr/bin:/bin"}).stdout.strip()

    (tmp_path / "metrics").mkdir()
    (tmp_path / "params.yaml").write_text("lr: 1e-4\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "code")
    code = git("rev-parse", "--short", "HEAD")
    (tmp_path / "metrics" / "fcn8s.json").write_text("{}")
    git("add", "-A")
    git("commit", "-qm", "results")
    assert code_version(tmp_path) == code != git("rev-parse", "--short", "HEAD")
