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
