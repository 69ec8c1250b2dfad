"""`make verify`: rebuild the committed pipeline from scratch and say what came back the same.

A reviewer's question after `make repro` is "did I get the committed results, and if not, why?".
:func:`verify` clones the committed HEAD into a temporary folder (or, if asked, rebuilds the workspace
itself with `dvc repro --force`), runs the whole pipeline there, and compares it with what HEAD
commits: every DVC output by its hash in dvc.lock, every score in metrics/, the claims verdicts
(segcore.report.claims, judged on each side's metrics), and both machines' descriptions and numerics.
The page ends in one line: bitwise reproduced; the same claims with different numbers because the
numerics differ; or bytes that differ under the same numerics, which is a bug to report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from tabulate import tabulate

from segcore.core import atomic
from segcore.core.errors import UserError
from segcore.pipeline.seeds import metrics_at
from segcore.report import claims, results

# Stages whose outputs are measurements of the machine (its description, forward times): they differ
# between any two runs and never count against reproduction. The report stage's pages embed those
# times and the run's date: they are compared (without the date row) and listed, not counted.
MEASURED = ("device", "timing")
DERIVED = ("report",)
_DATE_ROW = re.compile(r"^\| date\s*\|.*\|\s*$", re.M)  # a report's generation time


@dataclass(frozen=True)
class Output:
    """One DVC output of the pipeline: its path, the stage that writes it, and how the two runs compare."""

    path: str
    stage: str
    status: str  # "identical", "differs", "only committed", "only rebuilt"

    @property
    def counted(self) -> bool:
        """Whether this output decides 'reproduced': not a measurement, not a page built on measurements."""
        return self.stage not in MEASURED + DERIVED

    @property
    def note(self) -> str:
        return " (measured)" if self.stage in MEASURED else " (embeds times, not counted)" if not self.counted else ""


def lock_outputs(lock_text: str) -> dict[str, tuple[str, str]]:
    """{output path: (stage, md5)} of every output in a dvc.lock's text; {} for an empty lock."""
    lock = yaml.safe_load(lock_text) or {}
    return {out["path"]: (stage, out.get("md5", "")) for stage, entry in (lock.get("stages") or {}).items()
            for out in entry.get("outs", [])}


def compare_outputs(committed: dict[str, tuple[str, str]], rebuilt: dict[str, tuple[str, str]],
                    text_of=None) -> list[Output]:
    """Every output of either lock, in path order, compared by hash. ``text_of(path)`` -> (committed, rebuilt)
    texts of a Markdown report: reports compare without their generation date row."""
    rows = []
    for path in sorted(set(committed) | set(rebuilt)):
        stage = (committed.get(path) or rebuilt[path])[0]
        if path not in rebuilt:
            status = "only committed"
        elif path not in committed:
            status = "only rebuilt"
        elif committed[path][1] == rebuilt[path][1]:
            status = "identical"
        elif text_of is not None and path.endswith(".md"):
            old, new = text_of(path)
            status = "identical" if old is not None and _DATE_ROW.sub("", old) == _DATE_ROW.sub("", new) else "differs"
        else:
            status = "differs"
        rows.append(Output(path, stage.split("@")[0], status))
    return rows


def numerics_of(device: dict, lines: list[str]) -> str:
    """What decided the rounding of a run, from the device lines its models recorded (``lines``, as the
    reports show them) and its machine description (resolved/device.json): 'portable avx2, 2 threads',
    the same on any x86-64 CPU with AVX2, or in native mode the CPU itself. Not from params.yaml: a
    commit's results may come from before its params changed."""
    found = {m.groups() for line in lines for m in [re.search(r"(portable|native) numerics \(([^)]*)\)", line)] if m}
    if not found:
        return "unrecorded (the run predates numerics records)"
    if len(found) > 1:
        return "mixed: " + "; ".join(sorted(f"{mode} {detail}" for mode, detail in found))
    mode, detail = found.pop()
    if mode == "portable":
        return f"portable {detail}"
    return (f"native {detail} on {device.get('cpu_vendor', '?')} family {device.get('cpu_family', '?')} "
            f"model {device.get('cpu_model', '?')}")


def verdict(outputs: list[Output], numerics: tuple[str, str], same_claims: bool) -> str:
    """The page's last line, from the compared outputs, each run's numerics and whether the claims agree."""
    differing = [o.path for o in outputs if o.counted and o.status != "identical"]
    if not differing:
        return "bitwise reproduced"
    committed, rebuilt = numerics
    if committed != rebuilt:
        what = "same claims" if same_claims else "different claims"
        return f"{what}, different numbers (different numerics: committed {committed}, rebuilt {rebuilt})"
    first = ", ".join(differing[:3]) + (" ..." if len(differing) > 3 else "")
    return (f"unexpected: same numerics ({rebuilt}), different bytes in {len(differing)} outputs ({first}); "
            f"a bug, or a difference the pins do not cover (docs/faithfulness.md)")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def _shown(repo: Path, ref: str, path: str) -> str | None:
    done = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def rebuild(repo: Path, work: Path | None, dvc: str) -> Path:
    """Run the pipeline: in a fresh clone of ``repo``'s HEAD at ``work``, or in ``repo`` itself (work None,
    every stage forced). Returns the folder that holds the rebuilt outputs. DVC's log goes to the console."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if work is None:
        target, cmd = repo, [dvc, "repro", "--force"]
    else:
        _git(repo, "clone", "--quiet", "--no-hardlinks", str(repo), str(work))
        # downloads/ (archives and caffemodels placed by hand or fetched, not in git) holds inputs, not
        # results: the clone reads the same files rather than fetching gigabytes again.
        if (repo / "downloads").is_dir():
            (work / "downloads").symlink_to(repo / "downloads", target_is_directory=True)
        env["DVC_SITE_CACHE_DIR"] = str(work.parent / "site-cache")  # nothing from an earlier run is reused
        # The clone's own code, not the package this environment installed (an editable install points at
        # the checkout verify was started from, uncommitted changes and all).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")]))
        target, cmd = work, [dvc, "repro"]
    print(f"verify: {' '.join(cmd)} in {target}", flush=True)
    if subprocess.run(cmd, cwd=target, env=env).returncode:
        raise UserError(f"`{' '.join(cmd)}` failed in {target}; its log is above")
    return target


def _training_lines(texts: list[str]) -> list[str]:
    """The distinct 'training' rows of the reports' provenance blocks: the device lines the models recorded."""
    found = re.findall(r"^\| training\s*\|\s*(.*?)\s*\|\s*$", "\n".join(texts), re.M)
    return list(dict.fromkeys(found))


def verify(repo: Path, out: Path, *, workspace: bool = False, keep: bool = False, dvc: str = "dvc") -> str:
    """Rebuild and compare (module docstring); writes the page to ``out`` and returns it."""
    repo = Path(repo).resolve()
    head = _git(repo, "rev-parse", "--short", "HEAD").strip()
    committed_lock = _shown(repo, "HEAD", "dvc.lock")
    if committed_lock is None:
        raise UserError(f"HEAD ({head}) of {repo} commits no dvc.lock: there are no committed results to verify")
    tmp = Path(tempfile.mkdtemp(prefix="segcore-verify-"))
    try:
        target = rebuild(repo, None if workspace else tmp / "work", dvc)
        page = _page(repo, head, target, committed_lock, workspace)
    finally:
        if keep and not workspace:
            print(f"verify: the rebuilt clone is kept at {tmp / 'work'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    atomic.write_text(Path(out), page)
    return page


def _page(repo: Path, head: str, target: Path, committed_lock: str, workspace: bool) -> str:
    rebuilt_lock = (target / "dvc.lock").read_text()
    outputs = compare_outputs(lock_outputs(committed_lock), lock_outputs(rebuilt_lock),
                              lambda p: (_shown(repo, "HEAD", p), (target / p).read_text()))
    committed_device = json.loads(_shown(repo, "HEAD", "resolved/device.json") or "{}")
    rebuilt_device = json.loads((target / "resolved" / "device.json").read_text())
    reports = sorted(p for p in lock_outputs(committed_lock) if p.endswith(".md"))
    lines = {"committed": _training_lines([_shown(repo, "HEAD", p) or "" for p in reports]),
             "rebuilt": _training_lines([(target / p).read_text() for p in reports if (target / p).exists()])}
    numerics = (numerics_of(committed_device, lines["committed"]), numerics_of(rebuilt_device, lines["rebuilt"]))
    committed_metrics = metrics_at("HEAD", repo)

    def rebuilt_metrics(name: str):
        path = target / "metrics" / f"{name}.json"
        return results.nested(json.loads(path.read_text())) if path.exists() else None

    before, after = claims.judge_all(committed_metrics), claims.judge_all(rebuilt_metrics)
    same_claims = [v.holds for v in before] == [v.holds for v in after]
    return render(head=head, where="the workspace (dvc repro --force)" if workspace else "a fresh clone of HEAD",
                  outputs=outputs, numerics=numerics, devices=(committed_device, rebuilt_device), lines=lines,
                  scores=_scores(repo, target), claims=(before, after),
                  last=verdict(outputs, numerics, same_claims))


def _scores(repo: Path, target: Path) -> list[tuple[str, str, float | None, float | None]]:
    """(net, metric, committed, rebuilt) for every score in either run's metrics/ files."""
    names = sorted({Path(p).stem for p in _git(repo, "ls-files", "metrics").split()}
                   | {p.stem for p in (target / "metrics").glob("*.json")})
    rows = []
    for name in names:
        old = json.loads(_shown(repo, "HEAD", f"metrics/{name}.json") or "{}")
        path = target / "metrics" / f"{name}.json"
        new = json.loads(path.read_text()) if path.exists() else {}
        rows += [(name, key, old.get(key), new.get(key)) for key in dict.fromkeys([*old, *new])]
    return rows


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def render(*, head: str, where: str, outputs: list[Output], numerics: tuple[str, str], devices: tuple[dict, dict],
           lines: dict[str, list[str]], scores: list, claims: tuple[list, list], last: str) -> str:
    """The verify page (Markdown): machines, outputs, scores, claims, and the one-line verdict last."""
    same = sum(o.status == "identical" for o in outputs if o.counted)
    counted = sum(o.counted for o in outputs)
    machine = [[side, d.get("cpu", "?"), d.get("isa", "unrecorded"), d.get("cores", "?"), ", ".join(d.get("gpus", []))
                or "none", n, "<br>".join(lines[side]) or "?"]
               for side, d, n in zip(("committed", "rebuilt"), devices, numerics)]
    moved = [(net, key, _num(a), _num(b), "" if a is None or b is None else f"{b - a:+.4g}")
             for net, key, a, b in scores]
    verdicts = [(v.claim.source, v.claim.finding, _word(v.holds), _word(w.holds)) for v, w in zip(*claims)]
    return "\n".join([
        f"# Verify: HEAD {head} rebuilt from scratch", "",
        "<!-- Written by `make verify` (segcore/pipeline/verify.py); not committed. -->", "",
        f"Rebuilt in {where} and compared with what HEAD commits: {same} of {counted} pipeline outputs are "
        f"byte-identical. Not counted: the `device` and `timing` stages, which measure the machine, and the "
        f"reports, which embed those times (Markdown pages compare without their date row).", "",
        "## Machines", "",
        tabulate(machine, ["run", "CPU", "ISA", "cores", "GPUs", "numerics", "training (as the reports record it)"],
                 tablefmt="github"), "",
        "## Outputs", "",
        tabulate([(o.path, o.stage, o.status + o.note) for o in outputs],
                 ["output", "stage", "rebuilt vs committed"], tablefmt="github"), "",
        "## Scores", "",
        tabulate(moved, ["net", "metric", "committed", "rebuilt", "change"], tablefmt="github", disable_numparse=True),
        "", "## Claims", "",
        tabulate(verdicts, ["source", "finding", "committed", "rebuilt"], tablefmt="github"), "",
        f"**{last}**", ""])


def _word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "not measured"}[holds]
