"""The pipeline over several seeds, as DVC experiments, and the claims report across them.

Each seed runs as `dvc exp run --temp -S seed=<n>` (outside the workspace, which stays as it
is), named after the seed and the commit, so a seed already run for this commit is not run
again. Its metrics files are read back from the experiment's git ref, and
segcore.report.claims judges every claim on each seed's numbers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from segcore.core import atomic
from segcore.core.errors import UserError
from segcore.report import results
from segcore.report import claims


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def experiment_name(seed: int, repo: Path) -> str:
    """'claims-seed1-3f2a9c1': the seed and the commit it ran on."""
    return f"claims-seed{seed}-{_git('rev-parse', '--short', 'HEAD', cwd=repo)}"


def experiment_ref(name: str, repo: Path) -> str | None:
    """The git ref DVC keeps the experiment ``name`` under (refs/exps/.../<name>), None if there is none."""
    refs = _git("for-each-ref", "--format=%(refname)", "refs/exps", cwd=repo).split()
    return next((r for r in refs if r.rsplit("/", 1)[-1] == name), None)


def run_seed(seed: int, repo: Path, dvc: str = "dvc") -> str:
    """Run the pipeline with ``seed`` as a DVC experiment unless this commit already has it; returns its ref."""
    name = experiment_name(seed, repo)
    if experiment_ref(name, repo) is None:
        print(f"running {name} (dvc exp run --temp -S seed={seed})", flush=True)
        done = subprocess.run([dvc, "exp", "run", "--temp", "-S", f"seed={seed}", "-n", name], cwd=repo)
        if done.returncode:
            raise UserError(f"dvc exp run for seed {seed} failed (exit {done.returncode}); see its output above")
    else:
        print(f"{name}: already run for this commit", flush=True)
    ref = experiment_ref(name, repo)
    if ref is None:
        raise UserError(f"dvc exp run for seed {seed} left no experiment named {name}")
    return ref


def metrics_at(ref: str, repo: Path) -> Callable[[str], Mapping | None]:
    """metrics/<experiment>.json as committed in ``ref``, per split; None where that commit has no such file."""
    def read(experiment: str) -> Mapping | None:
        done = subprocess.run(["git", "show", f"{ref}:metrics/{experiment}.json"], cwd=repo, capture_output=True,
                              text=True)
        return results.nested(json.loads(done.stdout)) if done.returncode == 0 else None

    return read


def claims_over_seeds(seeds: list[int], repo: Path, out: Path, dvc: str = "dvc") -> str:
    """Run (or reuse) one experiment per seed, then write ``out`` (claims-seeds.md); returns the page."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"seeds = {seeds} must be distinct, at least one")
    refs = {seed: run_seed(seed, repo, dvc) for seed in seeds}
    verdicts = {f"seed {s}": claims.judge_all(metrics_at(ref, repo)) for s, ref in refs.items()}
    page = claims.seeds_page(verdicts)
    page += "\nExperiments: " + ", ".join(f"`{ref.rsplit('/', 1)[-1]}`" for ref in refs.values()) + "\n"
    atomic.write_text(Path(out), page)
    return page
