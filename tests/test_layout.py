"""The package layout and the DAG agree: every stage depends on all the code it imports, segcore has
no import cycle, and imports between rooms only point down (config <- data <- models <- ...).

Imports are read statically from the source (module-level and function-level alike), so a lazy
import inside a function counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "segcore"
# The rooms, lowest first: a module may import its own room and the rooms before it, never after.
ROOMS = ("core", "config", "data", "models", "eval", "train", "report", "pipeline")


def module_file(name: str) -> Path | None:
    """segcore.a.b -> segcore/a/b.py or segcore/a/b/__init__.py; None if not a segcore module."""
    if name != "segcore" and not name.startswith("segcore."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[Path]:
    """segcore files imported by ``path`` anywhere in it (function-level too), with their packages' __init__."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path) if path.is_relative_to(PACKAGE) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .voc import x
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{alias.name}" for alias in node.names)  # `from pkg import module`
    files = set()
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            f = module_file(".".join(parts[:k]))
            if f is not None:
                files.add(f)
    files.discard(path)
    return files


def closure(script: Path) -> set[Path]:
    """Every segcore file that running ``script`` may import."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for f in imports_of(todo.pop()):
            if f not in seen:
                seen.add(f)
                todo.append(f)
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


def dvc_stages() -> dict[str, tuple[str, list[str]]]:
    """{stage name after foreach expansion: (cmd, deps)} as DVC itself reads dvc.yaml."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {s.addressing: (s.cmd, [d.def_path for d in s.deps]) for s in repo.index.stages}


def missing_deps(stages: dict[str, tuple[str, list[str]]]) -> list[str]:
    problems = []
    for name, (cmd, deps) in stages.items():
        scripts = re.findall(r"stages/\w+\.py", cmd)
        assert scripts, f"{name}: no stages/<script>.py in its command"
        for script in scripts:
            for f in sorted({ROOT / script, *closure(ROOT / script)}):
                if not covered(f, deps):
                    problems.append(f"{name}: imports {f.relative_to(ROOT)} but does not depend on it")
    return problems


def test_every_stage_depends_on_all_the_code_it_imports():
    assert missing_deps(dvc_stages()) == []


def test_a_dependency_removed_from_dvc_yaml_is_named():
    stages = dvc_stages()
    cmd, deps = stages["train@fcn8s"]
    narrowed = {"train@fcn8s": (cmd, [d for d in deps if d != "segcore/models"])}
    problems = missing_deps(narrowed)
    assert problems and all(p.startswith("train@fcn8s: imports segcore/models/") for p in problems)


def module_graph() -> dict[Path, set[Path]]:
    return {f: {g for g in imports_of(f) if g.name != "__init__.py" or g.parent != f.parent}
            for f in PACKAGE.rglob("*.py")}


def find_cycle(graph: dict[Path, set[Path]]) -> list[Path] | None:
    """One import cycle (as a list of files, first == last), or None. Iterative DFS with colours."""
    colour: dict[Path, int] = {}
    for start in graph:
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_segcore_has_no_import_cycle():
    cycle = find_cycle(module_graph())
    assert cycle is None, " -> ".join(str(p.relative_to(ROOT)) for p in cycle)


def test_an_introduced_cycle_is_found():
    graph = module_graph()
    a, b = PACKAGE / "core/errors.py", PACKAGE / "pipeline/cli.py"
    graph[a] = graph[a] | {b}  # as if core/errors.py imported segcore.pipeline.cli, which imports it
    cycle = find_cycle(graph)
    assert cycle is not None and a in cycle


def room(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else None


def test_rooms_import_only_downwards():
    wrong = []
    for f, targets in module_graph().items():
        here = room(f)
        for g in targets:
            there = room(g)
            if here and there and ROOMS.index(there) > ROOMS.index(here):
                wrong.append(f"{f.relative_to(ROOT)} imports {g.relative_to(ROOT)}")
    assert wrong == []


@pytest.mark.parametrize("name", ROOMS)
def test_every_room_says_what_lives_there_and_what_it_may_import(name):
    doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
    assert doc and "import" in doc.lower(), f"segcore/{name}/__init__.py needs a docstring naming what it may import"
