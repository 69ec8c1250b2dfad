"""End to end: the real dvc.yaml on tiny params, in a temporary git + DVC repo outside the checkout.

Checks what users rely on: `dvc repro` builds every stage and the reports; a second `dvc repro`
has nothing to do; a DVC remote carries data, models and run-cache to a second clone, whose
`dvc repro` then has nothing to do either; `dvc exp run -S lr=1e-5` reruns training and what
depends on it, and only that, with lr reaching the training code as a float; `dvc exp show`
lists the new metrics; `dvc exp push` / `dvc exp pull` hand the experiment to the other clone,
which can rerun its training from the shared run-cache without computing anything; one param
switches the FCN train stages to torchrun.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segcore.config.schema import load_yaml
from segcore.report import fingerprint
from test_params import BAD_PARAMS
from test_readme import readme_command

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))
TRAIN = [f"train@{n}" for n in ("fcn32s-fixed", "fcn32s", "fcn16s", "fcn8s", "t1-alexnet", "t1-vgg16", "t1-googlenet")]
BACKBONES = ["backbone@vgg16", "backbone@alexnet", "backbone@googlenet"]
NYUD = ("nyud-rgb", "nyud-rgbd", "nyud-hha", "nyud-rgbhha", "nyud-rgbhha16s")
TRAIN_NYUD = [f"train_nyud@{n}" for n in NYUD]
TRAIN_SIFT = [f"train_siftflow@{n}" for n in ("sift-fcn32s", "sift-fcn16s")]
TRAIN_UNET = [f"train_unet@{n}" for n in ("unet-isbi", "unet-isbi-noborder", "unet-voc")]
EVAL = [s.replace("train", "evaluate") for s in TRAIN]
TRAIN, EVAL = (TRAIN + TRAIN_NYUD + TRAIN_SIFT + TRAIN_UNET,
               EVAL + [s.replace("train", "evaluate") for s in TRAIN_NYUD + TRAIN_SIFT + TRAIN_UNET])
RELEASED = {"released_voc": ("voc-fcn32s", "voc-fcn16s", "voc-fcn8s", "voc-fcn8s-atonce", "voc-fcn-alexnet"),
            "released_nyud": ("nyud-fcn32s-color", "nyud-fcn32s-hha", "nyud-fcn32s-color-hha"),
            "released_siftflow": ("siftflow-fcn32s", "siftflow-fcn16s", "siftflow-fcn8s")}
RELEASED_STAGES = {f"{family}@{net}" for family, nets in RELEASED.items() for net in nets} | {"released_report"}
# Files in the released layouts that the repo's downloads/ holds (tests/caffe_writer.py): one of each kind
# (skips and Scale blobs, the CaffeNet trunk, the colour-HHA fusion, the two SIFT Flow heads); the rest
# stay out of released.nets.twin and record that they were not selected.
PLACED = ("voc-fcn8s-atonce", "voc-fcn-alexnet", "nyud-fcn32s-color-hha", "siftflow-fcn16s")
DATA = {"download@voc", "download@nyud", "download@siftflow", "download@isbi", "prepare@nyud", "prepare@siftflow",
        "prepare@isbi", "hha"}
ALWAYS = {"device"}  # describes the machine on every run; what depends on it reruns only when it changed

pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    """The shipped params with every size cut down so the whole DAG runs in about a minute."""
    p = load_yaml(ROOT / "params.yaml")
    p["twin"]["voc"].update(n_sbd_train=6, n_voc_train=3, n_voc_val=6, n_test=2, min_size=32, max_size=40)
    p["twin"]["nyud"].update(n_train=6, n_test=3, scale=0.125)
    p["twin"]["siftflow"].update(n_train=10, n_test=8, n_unannotated=1, size=32)
    p["twin"]["isbi"].update(n_slices=3, size=64)
    p["unet"]["smoke"].update(schedules={"isbi": 2, "voc": 2}, val_every=2, checkpoint_every=2, eval_tile=36)
    p["net"]["smoke"]["width"] = 0.0625
    p["backbone"]["smoke"].update(iterations={"vgg16": 2, "alexnet": 2, "googlenet": 2}, batch_size=2,
                                  image_size=64)  # AlexNet (CaffeNet) needs >= 39
    p["train"]["smoke"].update(schedules=dict.fromkeys(p["train"]["smoke"]["schedules"], 2), batch_size=1, val_every=2, checkpoint_every=1)
    p["timing"].update(size=48, smoke_trials=1, warmup=0)
    p["released"]["nets"]["twin"] = list(PLACED)
    return p


def place_released(downloads: Path, width: float) -> dict[str, str]:
    """Write PLACED into ``downloads`` in the released layouts, from seeded random weights; {net: sha256}."""
    import hashlib

    import torch
    from caffe_writer import write_released

    from segcore.models.registry import build_model
    from segcore.models.released import RELEASED as CATALOGUE

    downloads.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    sha = {}
    for name in PLACED:
        net = CATALOGUE[name]
        model = build_model(net.arch, n_classes=net.n_classes, width=width, in_channels=net.in_channels)
        with torch.no_grad():
            for key, param in model.named_parameters():
                if param.requires_grad:  # the fixed bilinear upsampling stays as the reference holds it
                    param.normal_(0, 0.05)
        path = write_released(downloads / net.file, name, model)
        sha[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sha


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(tmp / "site-cache"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@localhost", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@localhost", OMP_NUM_THREADS="1")
    return env


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def make_repo(tmp: Path, params: dict, env: dict | None = None) -> tuple[Path, dict]:
    """A git + DVC repo under ``tmp`` with this checkout's pipeline and code, and ``params`` as params.yaml."""
    work = tmp / "repo"
    work.mkdir()
    for name in ("dvc.yaml", "pyproject.toml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    for name in ("segcore", "stages"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "reports").mkdir()  # the report stage reads claims-seeds.md (written by `make claims-seeds`)
    shutil.copy(ROOT / "reports" / "claims-seeds.md", work / "reports" / "claims-seeds.md")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = env or _env(tmp)
    # The stages import the repo's own segcore, not this checkout's through the editable install: what DVC
    # hashes as their code is what runs, and files segcore writes (download pins) land in the repo.
    env["PYTHONPATH"] = str(work)
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "start"]):
        _run(cmd, work, env)
    return work, env


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    work, env = make_repo(tmp_path_factory.mktemp("pipeline"), tiny_params())
    place_released(work / "downloads", tiny_params()["net"]["smoke"]["width"])  # placed by hand: not in git
    return work, env


def _ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def test_repro_builds_everything_then_is_up_to_date(repo):
    work, env = repo
    log = _run([DVC, "repro"], work, env)
    assert _ran(log) == {"params", *ALWAYS, *DATA, *BACKBONES, "timing", "report", *TRAIN, *EVAL, *RELEASED_STAGES}
    for name in ("table1.md", "table2.md", "table3.md", "table4.md", "table5.md", "unet.md", "unet.png",
                 "figure4.png", "curves-table1.png", "curves-table2.png", "curves-table4.png", "curves-table5.png",
                 "curves-unet.png", "README.md"):
        assert (work / "reports" / name).stat().st_size > 0
    table1 = (work / "reports" / "table1.md").read_text()
    assert all(f"| {net} " in table1 for net in ("FCN-AlexNet", "FCN-VGG16", "FCN-GoogLeNet"))
    table4 = (work / "reports" / "table4.md").read_text()
    assert "| FCN-16s RGB-HHA " in table4 and "Gupta et al. *(reference, as published)*" in table4
    table5 = (work / "reports" / "table5.md").read_text()
    assert "| FCN-16s " in table5 and "Farabet et al. 1 *(reference, as published)*" in table5
    assert "geom. acc. (ours)" in table5
    unet = (work / "reports" / "unet.md").read_text()
    assert "| u-net " in unet and "IDSIA *(reference, as published)*" in unet and "(ours, ablation)" in unet
    table2 = (work / "reports" / "table2.md").read_text()
    assert "| U-Net *(beyond the paper)* " in table2
    assert "Smoke profile" in table2 and "| FCN-8s " in table2 and "CPU:" in table2
    # Metrics files hold flat numbers only; counts and provenance are in the record beside the evaluation.
    for name in ("fcn8s", "unet-isbi", "sift-fcn16s", "timing"):
        flat = json.loads((work / "metrics" / f"{name}.json").read_text())
        assert flat and all(isinstance(v, float) and k.count(".") == 1 for k, v in flat.items()), (name, flat)
    metrics = json.loads((work / "metrics" / "fcn8s.json").read_text())
    assert {f"seg11valid.{m}" for m in ("pixel_acc", "mean_acc", "mean_iu", "fw_iu")} <= set(metrics)
    assert "voc2012_test.mean_iu" in metrics
    record = json.loads((work / "eval" / "fcn8s" / "record.json").read_text())
    assert record["profile"] == "smoke" and record["splits"]["seg11valid"]["images"] > 0
    _check_released(work)
    again = _run([DVC, "repro"], work, env)
    assert _ran(again) == ALWAYS
    assert "Stage 'timing' didn't change, skipping" in again
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline"], work, env)


def _check_released(work: Path) -> None:
    """The placed files were converted and scored, reports/released.md sets each beside its reference with the
    file's sha256, the others say they were not run, and Tables 1, 2, 4, 5 carry the column."""
    import hashlib

    from segcore.models.released import RELEASED as CATALOGUE

    page = (work / "reports" / "released.md").read_text()
    assert "stand-ins written by the tests" in page and "Smoke profile" in page
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| ") and "`" in line}
    for name, net in CATALOGUE.items():
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert cells[1] == f"`{net.file}`" and cells[2] == net.split
        if name in PLACED:
            sha = hashlib.sha256((work / "downloads" / net.file).read_bytes()).hexdigest()
            assert cells[-1] == f"`{sha[:16]}…`" and float(cells[5]) >= 0 and int(cells[-2]) > 0, cells
            metrics = json.loads((work / "metrics" / f"released-{name}.json").read_text())
            assert metrics[f"{net.split}.mean_iu"] == pytest.approx(float(cells[5]), abs=0.005)
        else:
            assert cells[5] == "not run" and cells[-1] == "-", cells
    assert "- [released.md](released.md): The FCN authors' released nets, scored here" in (
        work / "reports" / "README.md").read_text()
    column = "released net, scored here"
    scored = lambda name: re.compile(rf"\| \d+\.\d \({name}\)\s+\|$", re.M)  # noqa: E731  a score in the last cell
    pages = {n: (work / "reports" / f"table{n}.md").read_text() for n in range(1, 6)}
    assert column in pages[1] and scored("voc-fcn-alexnet").search(pages[1]), pages[1]
    assert re.search(r"\| not run \(voc-fcn8s\)\s+\|$", pages[2], re.M)
    assert column in pages[4] and scored("nyud-fcn32s-color-hha").search(pages[4])
    assert scored("siftflow-fcn16s").search(pages[5])
    assert column not in pages[3]


def test_verify_rebuilds_the_committed_head_bitwise(repo, tmp_path):
    """make verify on the baseline just committed: a fresh clone rebuilt on this machine, in portable numerics,
    gives every counted output byte for byte (the pins restart each stage; the clone shares no cache)."""
    work, env = repo
    out = tmp_path / "verify.md"
    log = _run([sys.executable, "stages/verify.py", "--out", str(out)], work, env)
    page = out.read_text()
    assert log.strip().splitlines()[-1] == "bitwise reproduced", page
    assert "| models/fcn8s/model.pt " in page and "| portable avx2, 2 threads " in page
    assert "| fcn8s " in page and "seg11valid.mean_iu" in page  # scores side by side
    assert "(measured)" in page  # the timing stage's outputs: listed, not counted
    assert not list(work.glob("reports/verify.md")) and _run(["git", "status", "--porcelain"], work, env) == ""


def _changed_stages(work: Path, env: dict) -> set[str]:
    return set(json.loads(_run([DVC, "status", "--json"], work, env))) - ALWAYS


def test_a_paper_only_value_leaves_every_smoke_stage_up_to_date(repo):
    work, env = repo
    text = (work / "params.yaml").read_text()
    try:
        params = yaml.safe_load(text)
        params["train"]["paper"]["momentum"] = 0.95  # read by the paper scale only
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert _changed_stages(work, env) == {"params"}  # only the stage that reads params.yaml itself
        log = _run([DVC, "repro"], work, env)
        assert _ran(log) == {"params", *ALWAYS}  # its resolved files did not change: nothing else runs
    finally:
        (work / "params.yaml").write_text(text)
        _run([DVC, "repro"], work, env)


def test_editing_the_params_module_lists_the_training_stages(repo):
    work, env = repo
    module = work / "segcore" / "config" / "params.py"
    text = module.read_text()
    try:
        module.write_text(text + "# edited\n")
        changed = _changed_stages(work, env)
        assert set(TRAIN) <= changed and "params" in changed
    finally:
        module.write_text(text)
    assert _changed_stages(work, env) == set()


OUTPUTS = ("data", "models", "metrics", "eval", "reports", "resolved", "dvc.lock")


def _snapshot(work: Path) -> dict[str, bytes]:
    files = [p for name in OUTPUTS for p in sorted((work / name).rglob("*") if (work / name).is_dir()
                                                     else [work / name]) if p.is_file()]
    return {str(p.relative_to(work)): p.read_bytes() for p in files if p.name != "device.json"}


# Every bad value is checked against the params stage in tests/test_params.py; these go through DVC,
# one per kind of damage a late check once did (data, models, a shell, git-tracked metrics).
AT_DVC = ("profile = 'foo' is not allowed", "lr = 1000.0 is out of range", "runtime.launch = 'echo injected",
          "unknown key learning_rate", "missing key evaluate")


def test_bad_params_stop_the_run_before_any_output_changes(repo):
    """A bad value: `dvc repro` fails in the params stage with one line naming it; no output changed."""
    work, env = repo
    text = (work / "params.yaml").read_text()
    before = _snapshot(work)
    refused = []
    try:
        for edit, message in (bad for bad in BAD_PARAMS if bad[1] in AT_DVC):
            params = yaml.safe_load(text)
            edit(params)
            (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            done = subprocess.run([DVC, "repro"], cwd=work, env=env, capture_output=True, text=True)
            errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error: ")]
            assert done.returncode != 0 and len(errors) == 1 and message in errors[0], (message, errors)
            assert _ran(done.stdout + done.stderr) <= {"params", *ALWAYS}
            assert _snapshot(work) == before, message
            assert not (work / "injected.txt").exists()
            refused.append(message)
    finally:
        (work / "params.yaml").write_text(text)
    assert len(refused) == len(AT_DVC)
    assert _ran(_run([DVC, "repro"], work, env)) <= {"params", *ALWAYS} and _changed_stages(work, env) == set()


def test_timing_reruns_on_another_machine_and_only_there(repo):
    """A machine with a GPU is simulated by an `nvidia-smi` on PATH: the device description changes."""
    work, env = repo
    fake = work.parent / "other-machine-bin"
    fake.mkdir(exist_ok=True)
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA Test GPU'\n")
    smi.chmod(0o755)
    elsewhere = dict(env, PATH=f"{fake}{os.pathsep}{env['PATH']}")
    log = _run([DVC, "repro"], work, elsewhere)
    assert _ran(log) == {*ALWAYS, "timing", "report"}
    assert "NVIDIA Test GPU" in (work / "resolved" / "device.json").read_text()
    assert _ran(_run([DVC, "repro"], work, elsewhere)) == ALWAYS  # the same machine again: up to date
    log = _run([DVC, "repro"], work, env)  # back on this machine
    assert _ran(log) <= {*ALWAYS, "timing", "report"} and _changed_stages(work, env) == set()


def _clone(work: Path, env: dict) -> Path:
    """A git remote (bare repo) and a local-folder DVC remote next to ``work``; the second clone behind them."""
    tmp, other = work.parent, work.parent / "other"
    if not other.exists():
        _run(["git", "init", "-q", "--bare", str(tmp / "origin.git")], tmp, env)
        _run(["git", "remote", "add", "origin", str(tmp / "origin.git")], work, env)
        _run([DVC, "remote", "add", "-d", "shared", str(tmp / "dvc-remote")], work, env)
        _run(["git", "commit", "-qam", "shared DVC remote"], work, env)
        _run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], work, env)
        _run(["git", "clone", "-q", "--branch", "main", str(tmp / "origin.git"), str(other)], tmp, env)
    return other


def test_remote_round_trip_leaves_the_other_clone_up_to_date(repo):
    work, env = repo
    other = _clone(work, env)
    _run([DVC, "push", "--run-cache"], work, env)
    assert not (other / "models/fcn8s/model.pt").exists()  # only .gitignore files came with git
    _run([DVC, "pull", "--run-cache"], other, env)
    log = _run([DVC, "repro"], other, env)
    assert _ran(log) == ALWAYS
    for name in ("models/fcn8s/model.pt", "eval/fcn8s/per_class_iu.json", "reports/table2.md"):
        assert (other / name).read_bytes() == (work / name).read_bytes(), name


def test_exp_run_with_scientific_lr_reruns_only_training_and_dependents(repo):
    work, env = repo
    log = _run([DVC, "exp", "run", "-S", "lr=1e-5"], work, env)
    assert _ran(log) == {"params", *ALWAYS, "report", *TRAIN, *EVAL} - {
        *TRAIN_UNET, *(s.replace("train", "evaluate") for s in TRAIN_UNET)}
    # DVC wrote `lr: 1e-05`; the training code must have read a float, not the string '1e-05'.
    assert "lr: 1e-05" in (work / "params.yaml").read_text()
    import torch

    mult = tiny_params()["train"]["smoke"]["lr_multiplier"]
    for name in ("fcn32s", "t1-alexnet"):  # Table 1's nets follow lr too
        record = torch.load(work / "models" / name / "model.pt", weights_only=True)
        scale = tiny_params()["train"]["smoke"]["net_lr_scale"]["alexnet" if "alexnet" in name else "vgg16"]
        assert isinstance(record["lr"], float) and record["lr"] == pytest.approx(1e-5 * mult * scale)
    text = json.dumps(json.loads(_run([DVC, "exp", "show", "--json"], work, env)))
    assert "metrics/fcn8s.json" in text and "mean_iu" in text and "1e-05" in text
    # The README's comparison line: the changed param and the headline metrics, in a 160-column terminal.
    shown = _run(shlex.split(readme_command("dvc exp show")), work, dict(env, COLUMNS="160"))
    assert "1e-05" in shown and "seg11valid.mean_iu" in shown and "Experiment" in shown
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= 160, shown


def test_experiment_travels_to_the_other_clone_and_reruns_from_the_run_cache(repo):
    work, env = repo
    other = _clone(work, env)
    name = _run([DVC, "exp", "list", "--name-only"], work, env).split()[0]
    _run([DVC, "exp", "push", "origin", name], work, env)  # git refs to origin, outputs to the DVC remote
    _run([DVC, "push", "--run-cache"], work, env)
    _run([DVC, "exp", "pull", "origin", name], other, env)
    shown = json.dumps(json.loads(_run([DVC, "exp", "show", "--json"], other, env)))
    assert name in shown and "1e-05" in shown
    _run([DVC, "pull", "--run-cache"], other, env)
    # Training is what the run-cache saves. (Evaluation would rerun: its metrics files live in git,
    # cache: false, and `dvc push` carries only cached outputs for the run-cache.)
    log = _run([DVC, "exp", "run", "-S", "lr=1e-5", "train@fcn8s"], other, env)
    assert _ran(log) <= {"params"}
    for stage in ("train@fcn32s", "train@fcn16s", "train@fcn8s"):
        assert f"Stage '{stage}' is cached - skipping run" in log
    assert (other / "models/fcn8s/model.pt").read_bytes() == (work / "models/fcn8s/model.pt").read_bytes()


def test_claims_over_seeds_run_as_experiments_and_are_reused(repo):
    """`make claims-seeds`' script: one `dvc exp run --temp` per seed, the page from their metrics."""
    work, env = repo
    before = (work / "params.yaml").read_bytes()
    # One seed keeps this test to one pipeline run; the page's columns over several seeds are
    # tested on hand-made metrics in tests/test_claims.py.
    log = _run([sys.executable, "stages/claims_seeds.py", "--seeds", "3", "--out", "reports/claims-seeds.md"],
               work, env)
    assert "running claims-seed3-" in log and (work / "params.yaml").read_bytes() == before  # workspace untouched
    page = (work / "reports" / "claims-seeds.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("| finding"))
    assert [c.strip() for c in header.split("|")[2:4]] == ["seed 3", "holds in"]
    assert "1 run (seed 3)" in page and "`claims-seed3-" in page
    assert "claims-seed3-" in _run([DVC, "exp", "list", "--name-only"], work, env)
    # Where the run came from: the commit, the device and numerics of its record, and the fingerprint.
    head = _run(["git", "rev-parse", "HEAD"], work, env).strip()
    assert f"Made at commit {head[:7]}" in page and "| seed 3 | `claims-seed3-" in page
    assert "CPU:" in next(line for line in page.splitlines() if line.startswith("| seed 3 "))
    assert fingerprint.read(page)["commit"] == head
    again = _run([sys.executable, "stages/claims_seeds.py", "--seeds", "3", "--out", "reports/claims-seeds.md"],
                 work, env)
    assert "already run for this commit" in again and "running" not in again
    # The report stage depends on the page: it reruns and calls the page current, then stale once the
    # training code it names changes (a comment in segcore/train: the scores' code, a dep of the report too).
    assert _ran(_run([DVC, "repro", "report"], work, env)) == {"report", *ALWAYS}
    index = (work / "reports" / "README.md").read_text()
    assert f"made at {head[:7]}, from the training code and params of this run" in index
    loop = work / "segcore" / "train" / "loop.py"
    text = loop.read_text()
    try:
        loop.write_text(text + "# edited\n")
        assert fingerprint.check(work / "reports" / "claims-seeds.md", work).code == ("segcore/train",)
    finally:
        loop.write_text(text)


def test_one_param_switches_training_to_torchrun(repo):
    """`runtime.launch` rewrites the FCN train stages' command: two gloo processes on this CPU."""
    work, env = repo
    launch = "runtime.launch='torchrun --standalone --nproc_per_node=2'"  # quoted: DVC parses -S values
    log = _run([DVC, "exp", "run", "-S", launch, "-S", "train.smoke.batch_size=2", "train@fcn32s"], work,
               dict(env, GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1"))
    assert _ran(log) == {"params", "train@fcn32s"} and "> python stages/train.py fcn32s" in log
    import torch

    record = torch.load(work / "models" / "fcn32s" / "model.pt", weights_only=True)
    assert record["trained_on"]["processes"] == 2
