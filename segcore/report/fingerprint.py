"""What reports/claims-seeds.md was made from, and whether that has changed since.

`make claims-seeds` runs the pipeline once per seed as DVC experiments, so its page is no DVC output
and DVC cannot tell when it is out of date: a page nine commits old once contradicted claims.md with
nothing saying so. The page therefore ends with a fingerprint in an HTML comment: the commit it was
made at, and a digest of every code path and every resolved params view that the stages behind the
claims' scores depend on (their deps in dvc.yaml, segcore.pipeline.seeds.fingerprint_paths), the
seed left out, since the page is over seeds. The report stage, which depends on the page and on the
same paths, recomputes the digests and names what changed (:func:`check`, :func:`note`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "<!-- claims-seeds fingerprint (read by the report stage; do not edit): "
COMMENT = re.compile(re.escape(PREFIX) + r"(\{.*\}) -->")


def seedless(view: dict) -> dict:
    """``view`` (a stage's resolved params) without the pipeline's top-level ``seed``, which the
    views carry at their top level and in a training ``spec``. A twin's own seed (``twin.<set>.seed``)
    stays: it changes the data. tests/test_fingerprint.py checks that every view is seed-free this way."""
    out = {k: v for k, v in view.items() if k != "seed"}
    if isinstance(out.get("spec"), dict):
        out["spec"] = {k: v for k, v in out["spec"].items() if k != "seed"}
    return out


def view_digest(view: dict) -> str:
    """Digest of a resolved view, seed left out; the same values give the same digest, whether the view
    comes from segcore.pipeline.views or from its JSON file (hence the round trip: tuples, int keys)."""
    as_read = json.loads(json.dumps(view))
    return hashlib.sha256(json.dumps(seedless(as_read), sort_keys=True).encode()).hexdigest()[:16]


def code_digest(path: Path) -> str | None:
    """Digest of a code file, or of a folder's files (paths and bytes); None where it does not exist."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        # Bytecode is no code change (and appears, or not, with each Python that imports the folder)
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    else:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if f != path else b"")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def make(commit: str, root: Path, code: Iterable[str], views: Mapping[str, dict]) -> dict:
    """The fingerprint: ``commit``, the digest of each ``code`` path under ``root``, and of each view
    (``{dep path under resolved/params: view}``)."""
    return {"commit": commit, "code": {p: code_digest(Path(root) / p) for p in sorted(code)},
            "params": {p: view_digest(v) for p, v in sorted(views.items())}}


def embed(fingerprint: dict) -> str:
    """The HTML comment line a page carries (one line, so a diff shows it as one change)."""
    return PREFIX + json.dumps(fingerprint, sort_keys=True) + " -->"


def read(page_text: str) -> dict | None:
    """The fingerprint embedded in a page, None if it has none (or an unreadable one)."""
    found = COMMENT.search(page_text)
    try:
        fingerprint = json.loads(found.group(1)) if found else None
    except json.JSONDecodeError:
        return None
    ok = isinstance(fingerprint, dict) and {"commit", "code", "params"} <= set(fingerprint)
    return fingerprint if ok else None


@dataclass(frozen=True)
class Status:
    """A page's fingerprint against the current code and views: what changed since it was made."""

    commit: str | None             # None: the page has no fingerprint
    code: tuple[str, ...] = ()     # code paths whose content differs (or that are gone)
    params: tuple[str, ...] = ()   # resolved views whose values differ, seed left out (or that are gone)

    @property
    def stale(self) -> bool:
        return self.commit is None or bool(self.code or self.params)


def _current_view(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def check(page: Path, root: Path = Path()) -> Status:
    """Compare the fingerprint in ``page`` with the code and resolved views under ``root`` now."""
    fingerprint = read(Path(page).read_text())
    if fingerprint is None:
        return Status(None)
    code = tuple(p for p, d in fingerprint["code"].items() if code_digest(Path(root) / p) != d)
    params = []
    for p, d in fingerprint["params"].items():
        view = _current_view(Path(root) / p)
        if view is None or view_digest(view) != d:
            params.append(p)
    return Status(fingerprint["commit"], code, tuple(params))


def _listed(names: list[str], most: int = 6) -> str:
    """'segcore/train, stages/train.py and 3 more': the first few named, the rest counted."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def note(status: Status) -> str:
    """One sentence for the pages that point to claims-seeds.md: fresh, or stale and why."""
    if status.commit is None:
        return ("**stale**: it records no fingerprint of the code and params it came from; "
                "rerun `make claims-seeds`")
    made = f"made at {status.commit[:7]}"
    if not status.stale:
        return f"{made}, from the training code and params of this run"
    views = [re.sub(r"^.*?params/|\.json$", "", p) for p in status.params]  # 'train/fcn8s'
    changed = [*([f"code: {_listed(list(status.code))}"] if status.code else []),
               *([f"params (resolved views): {_listed(views)}"] if views else [])]
    return (f"**stale**: {made}; training code/params changed since ({'; '.join(changed)}): "
            "rerun `make claims-seeds`")
