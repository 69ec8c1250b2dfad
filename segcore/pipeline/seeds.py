"""The pipeline over several seeds, as DVC experiments, and the claims report across them.

Each seed runs as `dvc exp run --temp -S seed=<n>` (outside the workspace, which stays as it
is), named after the seed, the commit and the fingerprint of the code and params it runs
(segcore.report.fingerprint), so a seed already run for this very code and params is not run
again. Its metrics files are read back from the experiment's git ref, its device and numerics from
its evaluation record, and segcore.report.claims judges every claim on each seed's numbers. The
page names the commit, each run's device and numerics, and ends with the fingerprint, which the
report stage compares with the current code and params to mark the page stale.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from tabulate import tabulate

from segcore.core import atomic
from segcore.core.errors import UserError
from segcore.report import claims, fingerprint, results
from segcore.report.context import code_version

METRICS = "metrics"           # metrics/<experiment>.json, as dvc.yaml's evaluate stages write them
RECORDED = "fcn8s"            # the net whose evaluation record names a run's device and numerics
JUDGE = "segcore/report/claims.py"  # the claims and their tests: a change there changes the verdicts too
# The released nets' stages are left out of the seed runs: no claim reads them, and a run's temporary copy
# of the workspace has no downloads/ (git-ignored), so a selected net whose data a seed changes (NYUD and
# SIFT Flow validation splits) would fetch its file again, gigabytes on the real data.
LEAVE_OUT_RELEASED = ("-S", "released.nets.twin=[]", "-S", "released.nets.real=[]")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def experiment_name(seed: int, repo: Path, made_from: dict) -> str:
    """'claims-seed1-3f2a9c1-0b5e2d': the seed, the commit it runs on and the digest of the code and params
    it runs (``made_from``: claims_fingerprint), so an experiment is reused only for the same code and
    params, uncommitted edits included."""
    digest = hashlib.sha256(json.dumps({k: made_from[k] for k in ("code", "params")}, sort_keys=True).encode())
    return f"claims-seed{seed}-{_git('rev-parse', '--short', 'HEAD', cwd=repo)}-{digest.hexdigest()[:6]}"


def fingerprint_paths(repo: Path, experiments: Iterable[str], views_dir: str) -> tuple[list[str], list[str]]:
    """(code paths, view paths) the claims' scores rest on, as dvc.yaml declares them: the deps of the
    stages that write metrics/<experiment>.json and of every stage upstream of them. Code: a dep no
    stage writes (a script, a segcore folder or module); views: a dep under ``views_dir`` (the params
    stage's resolved/params). Data, models and other outputs follow from these and are left out."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        stages, graph = list(dvc_repo.index.stages), dvc_repo.index.graph
        written = {o.def_path for s in stages for o in s.outs}
        wanted = {f"{METRICS}/{e}.json" for e in experiments}
        scoring = [s for s in stages if wanted & {o.def_path for o in s.outs}]
        if not scoring:
            raise UserError(f"dvc.yaml has no stage writing {', '.join(sorted(wanted))}")
        upstream, todo = set(), list(scoring)
        while todo:  # DVC's graph points from a stage to the stages it depends on
            stage = todo.pop()
            if stage not in upstream:
                upstream.add(stage)
                todo.extend(graph.successors(stage))
        deps = {d.def_path for s in upstream for d in s.deps if not isinstance(d, ParamsDependency)}
    views = sorted(d for d in deps if Path(d).is_relative_to(views_dir))
    code = sorted(d for d in deps if d not in views and not any(d == w or Path(d).is_relative_to(w) for w in written))
    return code, views


def claims_fingerprint(repo: Path, views: Mapping[str, dict], views_dir: str = "resolved/params") -> dict:
    """The fingerprint (segcore.report.fingerprint.make) of the workspace for the claims: HEAD, and the
    digests of the code and views (``views``: segcore.pipeline.views.all_views of params.yaml) their
    scores rest on."""
    code, view_paths = fingerprint_paths(repo, claims.experiments(), views_dir)
    missing = [p for p in view_paths if Path(p).relative_to(views_dir).as_posix() not in views]
    if missing:
        raise UserError(f"dvc.yaml's stages read {', '.join(missing)}, which the params views do not include")
    return fingerprint.make(_git("rev-parse", "HEAD", cwd=repo), repo, [*code, JUDGE],
                            {p: views[Path(p).relative_to(views_dir).as_posix()] for p in view_paths})


def experiment_ref(name: str, repo: Path) -> str | None:
    """The git ref DVC keeps the experiment ``name`` under (refs/exps/.../<name>), None if there is none."""
    refs = _git("for-each-ref", "--format=%(refname)", "refs/exps", cwd=repo).split()
    return next((r for r in refs if r.rsplit("/", 1)[-1] == name), None)


def run_seed(seed: int, repo: Path, made_from: dict, dvc: str = "dvc") -> str:
    """Run the pipeline with ``seed`` as a DVC experiment unless one exists for this commit, code and params
    (``made_from``: claims_fingerprint); returns its ref."""
    name = experiment_name(seed, repo, made_from)
    if experiment_ref(name, repo) is None:
        print(f"running {name} (dvc exp run --temp -S seed={seed}, released nets left out)", flush=True)
        done = subprocess.run([dvc, "exp", "run", "--temp", "-S", f"seed={seed}", *LEAVE_OUT_RELEASED, "-n", name],
                              cwd=repo)
        if done.returncode:
            raise UserError(f"dvc exp run for seed {seed} failed (exit {done.returncode}); see its output above")
    else:
        print(f"{name}: already run for this commit, code and params", flush=True)
    ref = experiment_ref(name, repo)
    if ref is None:
        raise UserError(f"dvc exp run for seed {seed} left no experiment named {name}")
    return ref


def metrics_at(ref: str, repo: Path) -> Callable[[str], Mapping | None]:
    """metrics/<experiment>.json as committed in ``ref``, per split; None where that commit has no such file."""
    def read(experiment: str) -> Mapping | None:
        done = subprocess.run(["git", "show", f"{ref}:{METRICS}/{experiment}.json"], cwd=repo, capture_output=True,
                              text=True)
        return results.nested(json.loads(done.stdout)) if done.returncode == 0 else None

    return read


def record_at(ref: str, repo: Path, experiment: str = RECORDED) -> dict | None:
    """eval/<experiment>/record.json of the experiment ``ref`` (a DVC output: read from the DVC cache),
    None where it cannot be read."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return json.loads(dvc.api.read(f"eval/{experiment}/{results.RECORD}", repo=str(repo), rev=ref))
    except (OSError, DvcException, json.JSONDecodeError):
        return None


def _numerics(value) -> str:
    """'portable (aten avx2, onednn avx2, threads 2)' from a record's numerics (a mapping or a text)."""
    if not isinstance(value, Mapping):
        return str(value)
    rest = ", ".join(f"{k} {v}" for k, v in value.items() if k != "mode")
    return f"{value.get('mode', '?')} ({rest})" if rest else str(value.get("mode", "?"))


def run_description(record: dict | None) -> tuple[str, str]:
    """(device, numerics) a run trained on (its record's ``trained_on``), else those it was evaluated on;
    the numerics 'not recorded' where the record names none (the device then says what it knows)."""
    for source in ((record or {}).get("trained_on") or {}, record or {}):
        if source.get("device") or source.get("numerics"):
            numerics = source.get("numerics")
            return source.get("device", "?"), _numerics(numerics) if numerics else "not recorded"
    return f"not recorded (no readable eval/{RECORDED}/{results.RECORD})", "not recorded"


def provenance_section(repo: Path, commit: str, refs: Mapping[str, str],
                       descriptions: Mapping[str, tuple[str, str]]) -> str:
    """Markdown: the commit the runs came from, and per run its experiment, device and numerics."""
    rows = [[run, f"`{ref.rsplit('/', 1)[-1]}`", *descriptions[run]] for run, ref in refs.items()]
    dirty = " (with uncommitted changes)" if "uncommitted" in code_version(repo) else ""
    return "\n".join([
        "## Where these runs came from", "",
        "<!-- Generated by `make claims-seeds` (stages/claims_seeds.py); do not edit by hand. -->", "",
        f"Made at commit {commit[:7]}{dirty}: one `dvc exp run --temp -S seed=<n>` per seed, every other param "
        "and all code as in that commit (the released nets left out: no claim reads them). The report stage marks this page stale in reports/README.md and "
        "claims.md once the training code or params differ from these.", "",
        f"Device and numerics: those the run's {RECORDED} trained on, from its eval/{RECORDED}/record.json.", "",
        tabulate(rows, headers=["run", "experiment", "device", "numerics"], tablefmt="github",
                 disable_numparse=True)])


def claims_over_seeds(seeds: list[int], repo: Path, out: Path, views: Mapping[str, dict], dvc: str = "dvc",
                      views_dir: str = "resolved/params") -> str:
    """Run (or reuse) one experiment per seed, then write ``out`` (claims-seeds.md); returns the page.

    ``views``: segcore.pipeline.views.all_views of the workspace's params, for the fingerprint.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"seeds = {seeds} must be distinct, at least one")
    made_from = claims_fingerprint(repo, views, views_dir)
    refs = {f"seed {seed}": run_seed(seed, repo, made_from, dvc) for seed in seeds}
    verdicts = {run: claims.judge_all(metrics_at(ref, repo)) for run, ref in refs.items()}
    descriptions = {run: run_description(record_at(ref, repo)) for run, ref in refs.items()}
    page = "\n".join([claims.seeds_page(verdicts), provenance_section(repo, made_from["commit"], refs, descriptions),
                       "", fingerprint.embed(made_from), ""])
    atomic.write_text(Path(out), page)
    return page
