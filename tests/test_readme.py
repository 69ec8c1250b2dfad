"""The README and docs/ as a new user meets them: short, and every command in them valid as written.

What is cheap is checked here against the Makefile, dvc.yaml, params.yaml and the files on disk;
the README's `dvc exp show` line itself runs in tests/test_pipeline.py after a real experiment.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from segcore.config.schema import load_yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(doc: Path) -> list[str]:
    """The shell lines of a document's ```bash blocks, comments and continuation-free."""
    blocks = re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def readme_command(prefix: str) -> str:
    """The README's one command line that starts with ``prefix``."""
    found = [c for c in commands(ROOT / "README.md") if c.startswith(prefix)]
    assert len(found) == 1, f"README should show exactly one '{prefix}' line, found {found}"
    return found[0]


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


def _stage_names() -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    names = set()
    for name, stage in stages.items():
        items = stage.get("foreach")
        names |= {f"{name}@{item}" for item in items} if items else {name}
    return names


def _param_exists(key: str) -> bool:
    node = load_yaml(ROOT / "params.yaml")
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_readme_is_a_short_guide():
    assert len((ROOT / "README.md").read_bytes()) <= 8 * 1024


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_make_targets_scripts_and_links_exist(doc):
    text = doc.read_text()
    for line in commands(doc):
        words = shlex.split(line.replace("&&", " ; "))
        for i, word in enumerate(words):
            if word == "make" and i + 1 < len(words):
                assert words[i + 1] in _make_targets(), f"{doc.name}: {line}"
            if word.endswith(".py"):
                assert (ROOT / word).is_file(), f"{doc.name}: {line}"
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name} links to a missing {target}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_dvc_commands_name_real_params_and_stages(doc):
    """Each `-S key=value` names a key of params.yaml; each stage target is a stage of dvc.yaml."""
    for line in commands(doc):
        if not line.startswith("dvc "):
            continue
        words = shlex.split(line.split("&&")[-1] if line.startswith("dvc pull") else line)
        for flag, value in zip(words, words[1:]):
            if flag == "-S":
                assert _param_exists(value.split("=")[0]), f"{doc.name}: {line}"
        if words[1:3] == ["exp", "run"] or words[1] == "repro":
            targets = [w for w in words[2:] if "@" in w and not w.startswith("-")]
            assert set(targets) <= _stage_names(), f"{doc.name}: {line}"


def test_the_experiment_example_changes_something():
    """The README's example must move a value off its default, or the run would change nothing."""
    run = shlex.split(readme_command("dvc exp run -S"))
    key, value = run[run.index("-S") + 1].split("=")
    assert float(value) != float(load_yaml(ROOT / "params.yaml")[key])


def test_the_exp_show_selection_keeps_the_changed_param_and_existing_metrics():
    show = shlex.split(readme_command("dvc exp show"))
    keep = re.compile(show[show.index("--keep") + 1])
    assert keep.match("lr")
    metrics = {f"metrics/{net}.json:seg11valid.mean_iu" for net in ("fcn32s", "fcn8s")}
    assert all(keep.match(m) for m in metrics)
    assert all((ROOT / m.split(":")[0]).is_file() for m in metrics)


# Commands whose output the README shows a user to read: they must run as written in a fresh shell (the
# venv's bin on PATH, nothing else) and print lines a terminal holds (`dvc dag` of the whole pipeline once
# printed 51 lines of 2,999 columns, `dvc metrics show` 19 rows of 900).
READ = ("dvc stage list", "dvc dag", "dvc metrics diff", "python stages/scores.py")
WIDTH = 120


def _readable_commands() -> list[str]:
    """The README's bash lines and inline `code` that start with a command of READ."""
    inline = re.findall(r"`([^`\n]+)`", (ROOT / "README.md").read_text())
    return list(dict.fromkeys(c for c in [*commands(ROOT / "README.md"), *inline] if c.startswith(READ)))


def test_the_readme_shows_commands_for_the_graph_and_the_scores():
    shown = _readable_commands()
    assert any(c.startswith("dvc dag ") and "@" in c for c in shown)  # one stage's subgraph
    assert "python stages/scores.py" in shown
    assert not {"dvc dag", "dvc metrics show"} & set(shown)  # the whole graph, every metrics file: too wide


@pytest.mark.parametrize("line", _readable_commands())
def test_readme_inspection_commands_run_and_fit_a_terminal(line):
    import os
    import subprocess
    import sys

    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "DVC_NO_ANALYTICS": "1", "COLUMNS": str(WIDTH)}
    words = shlex.split(line)
    if words[:2] == ["dvc", "dag"]:
        assert {w for w in words[2:] if "@" in w} <= _stage_names(), line
    done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{line}: {done.stderr[-2000:]}"
    if "--md" in words:
        assert done.stdout.startswith("```mermaid"), line
    else:
        assert max((len(out) for out in done.stdout.splitlines()), default=0) <= WIDTH, line


def test_the_experiment_cost_names_the_stages_it_reruns():
    """'the 14 FCN nets (28 stages': the training stages whose resolved params the README's `-S` changes, and
    the stages downstream of them but the report, as the params stage and dvc.yaml decide."""
    import dataclasses

    from dvc.repo import Repo

    from segcore.config.params import load_params
    from segcore.pipeline.views import all_views, dumps

    run = shlex.split(readme_command("dvc exp run -S"))
    key, value = run[run.index("-S") + 1].split("=")
    params = load_params(ROOT / "params.yaml")
    before, after = all_views(params), all_views(dataclasses.replace(params, **{key: float(value)}))
    changed = {f"resolved/params/{rel}" for rel in before if dumps(before[rel]) != dumps(after[rel])}
    with Repo(str(ROOT)) as repo:
        graph, stages = repo.index.graph, list(repo.index.stages)
        rerun, todo = set(), [s for s in stages if changed & {d.def_path for d in s.deps}]
        while todo:  # the stages that read a changed view, and every stage downstream of them
            stage = todo.pop()
            if stage not in rerun:
                rerun.add(stage)
                todo.extend(graph.predecessors(stage))  # DVC's edges point from a stage to what it needs
        rerun = {s.addressing for s in rerun} - {"report"}
    trained = {s for s in rerun if s.split("@")[0].startswith("train")}
    found = re.search(r"the (\d+) FCN nets \((\d+) stages", (ROOT / "README.md").read_text().replace("\n", " "))
    assert found, "the README should say what the experiment reruns"
    assert (int(found[1]), int(found[2])) == (len(trained), len(rerun))
