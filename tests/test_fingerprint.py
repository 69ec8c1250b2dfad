"""claims-seeds.md's fingerprint: fresh while the code and params it names are unchanged, stale (and
saying why) once they differ; the seed alone never makes it stale; and the DAG lets the report stage
read what it checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from segcore.config.params import load_params
from segcore.pipeline.views import all_views, dumps
from segcore.report import fingerprint
from segcore.report.index import build_index

ROOT = Path(__file__).resolve().parents[1]
VIEWS = "resolved/params"


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def _views(params) -> dict[str, dict]:
    return {f"{VIEWS}/{rel}": json.loads(dumps(v)) for rel, v in all_views(params).items()}


def test_the_seed_changes_no_digest_but_a_twin_seed_or_lr_does(params):
    base = {p: fingerprint.view_digest(v) for p, v in _views(params).items()}
    reseeded = {p: fingerprint.view_digest(v) for p, v in _views(dataclasses.replace(params, seed=7)).items()}
    assert reseeded == base  # every view, whatever views.py adds: the page is over seeds
    assert _views(dataclasses.replace(params, seed=7)) != _views(params)  # the seed does reach the views
    voc = dataclasses.replace(params.twin.voc, seed=params.twin.voc.seed + 1)
    twin = _views(dataclasses.replace(params, twin=dataclasses.replace(params.twin, voc=voc)))
    assert fingerprint.view_digest(twin[f"{VIEWS}/download/voc.json"]) != base[f"{VIEWS}/download/voc.json"]
    lr = _views(dataclasses.replace(params, lr=params.lr / 10))
    assert fingerprint.view_digest(lr[f"{VIEWS}/train/fcn8s.json"]) != base[f"{VIEWS}/train/fcn8s.json"]


def _workspace(tmp_path: Path, params) -> tuple[Path, list[str], dict[str, dict]]:
    """A tiny tree: two code paths (a script, a folder) and two resolved views, as the report stage sees them."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "train.py").write_text("print('train')\n")
    (tmp_path / "segcore" / "train").mkdir(parents=True)
    (tmp_path / "segcore" / "train" / "loop.py").write_text("STEP = 1\n")
    views = {p: v for p, v in _views(params).items() if p.endswith(("train/fcn8s.json", "evaluate/fcn8s.json"))}
    for path, view in views.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(dumps(view))
    return tmp_path, ["stages/train.py", "segcore/train"], views


def _page(root: Path, code: list[str], views: dict) -> Path:
    page = root / "claims-seeds.md"
    page.write_text("# The papers' findings over several seeds\n\n| a | b |\n\n"
                    + fingerprint.embed(fingerprint.make("1713c76" + "0" * 33, root, code, views)) + "\n")
    return page


def test_a_page_is_fresh_until_its_code_or_params_change(tmp_path, params):
    root, code, views = _workspace(tmp_path, params)
    page = _page(root, code, views)
    fresh = fingerprint.check(page, root)
    assert not fresh.stale and fresh.code == () and fresh.params == ()
    assert fingerprint.note(fresh) == "made at 1713c76, from the training code and params of this run"
    # __pycache__ is no code change; a comment in a module of a fingerprinted folder is
    (root / "segcore" / "train" / "__pycache__").mkdir()
    (root / "segcore" / "train" / "__pycache__" / "loop.cpython-311.pyc").write_bytes(b"\0")
    assert not fingerprint.check(page, root).stale
    (root / "segcore" / "train" / "loop.py").write_text("STEP = 1  # edited\n")
    stale = fingerprint.check(page, root)
    assert stale.stale and stale.code == ("segcore/train",) and stale.params == ()
    text = fingerprint.note(stale)
    assert text.startswith("**stale**: made at 1713c76; training code/params changed since (code: segcore/train)")
    assert "make claims-seeds" in text


def test_a_changed_param_is_named_but_a_reseeded_view_is_not(tmp_path, params):
    root, code, views = _workspace(tmp_path, params)
    page = _page(root, code, views)
    train = root / VIEWS / "train" / "fcn8s.json"
    view = json.loads(train.read_text())
    train.write_text(dumps({**view, "seed": 3, "spec": {**view["spec"], "seed": 3}}))
    assert not fingerprint.check(page, root).stale
    train.write_text(dumps({**view, "spec": {**view["spec"], "lr": view["spec"]["lr"] / 10}}))
    stale = fingerprint.check(page, root)
    assert stale.params == (f"{VIEWS}/train/fcn8s.json",) and stale.code == ()
    assert "params (resolved views): train/fcn8s)" in fingerprint.note(stale)
    (root / "stages" / "train.py").unlink()  # a path gone counts as changed
    assert fingerprint.check(page, root).code == ("stages/train.py",)


def test_a_page_without_a_fingerprint_is_stale(tmp_path):
    page = tmp_path / "claims-seeds.md"
    page.write_text("# The papers' findings over several seeds\n\nExperiments: `claims-seed0-1713c76`\n")
    status = fingerprint.check(page, tmp_path)
    assert status.stale and status.commit is None
    assert "records no fingerprint" in fingerprint.note(status)
    page.write_text(fingerprint.PREFIX + "{not json} -->\n")
    assert fingerprint.check(page, tmp_path).commit is None


def test_the_index_and_claims_page_carry_the_note(tmp_path):
    from segcore.report import claims

    (tmp_path / "claims.md").write_text("# The papers' findings\n")
    note = "**stale**: made at 1713c76; training code/params changed since (code: segcore/train): rerun"
    index = build_index([tmp_path / "claims.md"], tmp_path / "README.md", {"claims-seeds.md": note}).read_text()
    line = next(line for line in index.splitlines() if line.startswith("- claims-seeds.md: "))
    assert line.endswith(f"; {note}")
    page = claims.claims_page(claims.judge_all(lambda _: None), smoke=True, header={}, seeds_note=note)
    assert f"shows how often each holds over seeds ({note})." in page


# The DAG: what the fingerprint names is what dvc.yaml says the scoring stages read, and the report
# stage, which checks it, depends on every one of those paths and on the page.

def _report_stage():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        stage = next(s for s in repo.index.stages if s.addressing == "report")
        return stage.cmd, [d.def_path for d in stage.deps], [o.def_path for o in stage.outs]


def test_the_fingerprint_covers_the_code_and_views_behind_every_claim():
    from segcore.pipeline.seeds import fingerprint_paths
    from segcore.report import claims

    code, views = fingerprint_paths(ROOT, claims.experiments(), VIEWS)
    assert {"stages/train.py", "segcore/pipeline/train.py", "segcore/train", "segcore/models", "stages/evaluate.py",
            "segcore/pipeline/evaluate.py", "segcore/eval", "stages/params.py", "segcore/pipeline/views.py",
            "stages/backbone.py", "stages/download.py"} <= set(code)
    assert not {"stages/report.py", "stages/timing.py", "stages/device.py", "params.yaml"} & set(code)
    assert not any(p.startswith(("data/", "models/", "metrics/", "eval/", "resolved/")) for p in code)
    assert {f"{VIEWS}/train/fcn8s.json", f"{VIEWS}/evaluate/unet-isbi.json", f"{VIEWS}/download/voc.json"} <= set(views)
    assert f"{VIEWS}/report.json" not in views and f"{VIEWS}/timing.json" not in views


def test_the_report_stage_depends_on_the_page_and_on_everything_its_fingerprint_names():
    from segcore.pipeline.seeds import JUDGE, fingerprint_paths
    from segcore.report import claims

    cmd, deps, outs = _report_stage()
    assert "--claims-seeds reports/claims-seeds.md" in cmd
    assert "reports/claims-seeds.md" in deps and "reports/claims-seeds.md" not in outs
    code, views = fingerprint_paths(ROOT, claims.experiments(), VIEWS)
    assert Path(ROOT / JUDGE).is_file()

    def covered(path: str) -> bool:
        return any(path == d or Path(path).is_relative_to(d) for d in deps)

    assert [p for p in [*code, *views, JUDGE] if not covered(p)] == []


def test_each_run_names_the_device_and_numerics_it_trained_on():
    from segcore.pipeline.seeds import run_description

    numerics = {"mode": "portable", "aten": "avx2", "onednn": "avx2", "threads": 2}
    record = {"device": "CPU: evaluation box",
              "trained_on": {"device": "CPU: AMD EPYC (avx512_bf16)", "numerics": numerics}}
    assert run_description(record) == ("CPU: AMD EPYC (avx512_bf16)", "portable (aten avx2, onednn avx2, threads 2)")
    assert run_description({"device": "CPU: AMD EPYC (2 threads)"}) == ("CPU: AMD EPYC (2 threads)", "not recorded")
    assert run_description({"device": "CPU: x", "numerics": "native"}) == ("CPU: x", "native")
    assert run_description(None)[0].startswith("not recorded")

def test_an_experiment_is_reused_only_for_the_same_code_and_params(tmp_path):
    import subprocess

    from segcore.pipeline.seeds import experiment_name

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost", "PATH": "/usr/bin:/bin"}
    for cmd in (["git", "init", "-q"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, env=env)
    made = {"commit": "c", "code": {"stages/train.py": "1"}, "params": {f"{VIEWS}/train/fcn8s.json": "2"}}
    name = experiment_name(1, tmp_path, made)
    assert name.startswith("claims-seed1-") and name == experiment_name(1, tmp_path, {**made, "commit": "other"})
    assert name != experiment_name(1, tmp_path, {**made, "params": {f"{VIEWS}/train/fcn8s.json": "3"}})
    assert name != experiment_name(2, tmp_path, made)
