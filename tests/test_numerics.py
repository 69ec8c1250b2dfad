"""Portable numerics (segcore.core.numerics): the pins, their restart into a stage process, and the
golden check: a tiny training run's weights, hashed, equal the value recorded for this CPU model (and,
on a CPU model not recorded yet, whether they equal another model's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segcore.core import machine, numerics
from segcore.core.numerics import Numerics, NumericsError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
ON_AVX2 = numerics.x86() and machine.cpu_isa() in ("amx", "avx512_bf16", "avx512", "avx2")


def test_portable_pins_the_isa_blas_and_threads_native_pins_nothing():
    pins = Numerics("portable", 3).pins()
    assert pins["OMP_NUM_THREADS"] == pins["MKL_NUM_THREADS"] == "3"
    if numerics.x86():
        assert (pins["ATEN_CPU_CAPABILITY"], pins["ONEDNN_MAX_CPU_ISA"], pins["MKL_CBWR"]) == ("avx2", "AVX2", "AVX2")
    assert Numerics("native", 3).pins() == {}
    assert Numerics("native", 3, deterministic=True).pins() == {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    assert numerics.missing(Numerics("portable", 3), env=pins) == {}
    assert numerics.missing(Numerics("portable", 4), env=pins)["OMP_NUM_THREADS"] == "4"


def test_portable_is_refused_on_an_x86_cpu_without_avx2(monkeypatch):
    monkeypatch.setattr(numerics, "x86", lambda: True)
    monkeypatch.setattr(numerics, "cpu_isa", lambda: "avx")
    with pytest.raises(NumericsError, match="runtime.numerics = portable pins avx2, which this CPU .* lacks; use native"):
        Numerics("portable").check_machine()
    Numerics("native").check_machine()  # native runs anywhere


def test_isa_level_from_cpu_flags():
    assert machine.cpu_isa({"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                            "avx512_bf16"}) == "avx512_bf16"
    assert machine.cpu_isa({"avx", "avx2", "fma", "sse4_2"}) == "avx2"  # the AVX2-only EPYC
    assert machine.cpu_isa({"avx", "sse4_2"}) == "avx"


def test_summary_names_mode_kernels_and_threads():
    state = {"mode": "native", "aten": "avx512", "onednn": "native", "threads": 8, "deterministic": False}
    assert numerics.summary(state) == "native numerics (avx512 kernels, oneDNN native, 8 threads)"
    state.update(mode="portable", aten="avx2", onednn="avx2", threads=1)
    assert numerics.summary(state) == "portable numerics (avx2, 1 thread)"


STAGE = '''
import json, os, sys
import numpy, torch
from segcore.core import numerics
from segcore.pipeline import cli

def main(argv=None):
    x = torch.randn(2, 16, 32, 32).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(16, 16, 3).to(memory_format=torch.channels_last)
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        conv(x).sum().backward()
    sys.stdout.flush()
    print(json.dumps({"pid": os.getpid(), "state": numerics.in_force(), "argv": sys.argv[1:]}))

sys.exit(cli.run(main))
'''


def _stage_run(tmp_path: Path, view: dict) -> tuple[dict, str]:
    (tmp_path / "view.json").write_text(json.dumps(view))
    (tmp_path / "stage.py").write_text(STAGE)
    env = {k: v for k, v in os.environ.items() if k not in Numerics("portable").pins()}
    proc = subprocess.run([sys.executable, str(tmp_path / "stage.py"), "--view", str(tmp_path / "view.json"), "x"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


@pytest.mark.skipif(not ON_AVX2, reason="portable numerics pin AVX2, which this CPU lacks (or it is not x86-64)")
def test_a_stage_process_restarts_with_the_pins_before_it_computes(tmp_path):
    out, log = _stage_run(tmp_path, {"numerics": {"mode": "portable", "threads": 1, "deterministic": False}})
    assert out["state"] == {"mode": "portable", "aten": "avx2", "onednn": "avx2", "threads": 1,
                            "deterministic": False}
    assert out["argv"] == ["--view", str(tmp_path / "view.json"), "x"]  # the same command line after the restart
    assert "isa:Intel AVX2" in log  # what oneDNN itself says it dispatches to


def test_native_numerics_leave_the_process_alone(tmp_path):
    out, _ = _stage_run(tmp_path, {"numerics": {"mode": "native", "threads": 1, "deterministic": False}})
    assert out["state"]["mode"] == "native"
    assert out["state"]["threads"] == (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                                       out["state"]["threads"])


@pytest.mark.skipif(not ON_AVX2, reason="portable numerics pin AVX2, which this CPU lacks (or it is not x86-64)")
def test_golden_weights_hash_in_portable_numerics():
    """The weights a tiny portable run ends with, against tests/golden/portable.json (one hash per CPU model,
    each naming its machine). On a recorded CPU model the hash must come back: a mismatch means the code or
    the numerics moved. On a CPU model not recorded, equality with another model's hash is cross-machine
    equality shown; a new hash is the measured answer that the pins do not cover it (docs/faithfulness.md,
    'Portable numerics'), reported as a skip that names both, for the next session to record."""
    golden = json.loads((GOLDEN / "portable.json").read_text())["runs"]
    proc = subprocess.run([sys.executable, str(GOLDEN / "train_hash.py"), "--portable"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    here = json.loads(proc.stdout)
    assert here["numerics"]["mode"] == "portable" and here["numerics"]["aten"] == "avx2"
    golden = [g for g in golden if g["torch"] == here["torch"]]
    if not golden:
        pytest.skip(f"no golden hash was made with torch {here['torch']}")
    same_cpu = [g for g in golden if g["cpu"] == here["cpu"]]
    if same_cpu:
        assert here["sha256"] == same_cpu[0]["sha256"], (
            f"portable numerics trained different weights on {here['device']} than this CPU model did before")
        return
    equal = [g["device"] for g in golden if g["sha256"] == here["sha256"]]
    if not equal:
        pytest.skip(f"this CPU model ({here['device']}) has no golden hash, and its hash {here['sha256'][:12]} "
                    f"differs from every recorded one ({'; '.join(g['device'] for g in golden)}): the pins do not "
                    "make them equal; record it with `python tests/golden/train_hash.py --portable --record`")
