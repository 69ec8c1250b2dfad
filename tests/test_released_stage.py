"""The released-net stages (segcore.pipeline.released) and their page (segcore.report.released), without DVC.

What a user relies on: a net the params leave out costs nothing and says so; a placed file that cannot be the
released net (truncated, or another file) is refused in one line before it is read; the page sets every
released file's reference beside our score, with its sha256, and the tables' column points at it.
tests/test_pipeline.py runs the stages through DVC on files in the released layouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caffe_writer import write_released
from segcore.data.download import DownloadError
from segcore.models.registry import build_model
from segcore.models.released import RELEASED
from segcore.pipeline import released as stage
from segcore.pipeline.released_status import STATUS, not_selected
from segcore.report import released as page
from segcore.report.context import Context
from segcore.report.results import write as write_results

WIDTH = 1 / 16
ROOT = Path(__file__).resolve().parents[1]


def _placed(tmp_path: Path, name: str) -> Path:
    net = RELEASED[name]
    model = build_model(net.arch, n_classes=net.n_classes, width=WIDTH, in_channels=net.in_channels)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return write_released(tmp_path / net.file, name, model)


@pytest.mark.parametrize("name", ["voc-fcn8s-atonce", "nyud-fcn32s-color-hha", "siftflow-fcn16s", "voc-fcn-alexnet"])
def test_the_size_check_accepts_each_layout_as_written(tmp_path, name):
    path = _placed(tmp_path, name)
    stage.check_size(path, RELEASED[name], WIDTH)  # no error: weights plus a little layout


def test_a_truncated_or_foreign_file_is_refused_in_one_line_before_reading(tmp_path):
    path = _placed(tmp_path, "voc-fcn8s")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError) as err:
        stage.check_size(path, RELEASED["voc-fcn8s"], WIDTH)
    assert "\n" not in str(err.value) and "truncated or another file" in str(err.value)
    path.write_bytes(data + bytes(2 << 20))  # far longer than the layout allows
    with pytest.raises(DownloadError):
        stage.check_size(path, RELEASED["voc-fcn8s"], WIDTH)


def test_a_full_size_file_must_hold_the_full_net(tmp_path):
    """The real files are width 1: a slimmed file placed under a real name is refused by its size."""
    path = _placed(tmp_path, "siftflow-fcn32s")
    with pytest.raises(DownloadError, match="at width 1 needs"):
        stage.check_size(path, RELEASED["siftflow-fcn32s"], 1.0)


def test_a_net_left_out_writes_a_record_saying_so_and_no_scores(tmp_path):
    view = {"net": "voc-fcn16s", "selected": False, "source": "twin"}
    assert stage.run_released(view, tmp_path / "downloads", tmp_path / "data", tmp_path / "m", tmp_path / "x.json",
                              tmp_path / "e") is None
    assert json.loads((tmp_path / "x.json").read_text()) == {}
    status = json.loads((tmp_path / "m" / STATUS).read_text())
    assert status["selected"] is False and "released.nets.twin" in status["why"]
    assert not (tmp_path / "downloads").exists()  # nothing fetched


def test_the_placed_file_is_pinned_then_a_changed_one_refused(tmp_path):
    path = _placed(tmp_path / "downloads", "voc-fcn8s")
    record = tmp_path / "pins.json"
    _, sha = stage.locate(RELEASED["voc-fcn8s"], tmp_path / "downloads", WIDTH, progress=False, record_file=record)
    assert json.loads(record.read_text())[path.name]["sha256"] == sha
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="recorded"):
        stage.locate(RELEASED["voc-fcn8s"], tmp_path / "downloads", WIDTH, progress=False, record_file=record)


def _scored(tmp_path: Path, name: str, mean_iu: float) -> None:
    net = RELEASED[name]
    results = {net.split: {"pixel_acc": 90.0, "mean_acc": 75.0, "mean_iu": mean_iu, "fw_iu": 83.0, "images": 736}}
    eval_dir = tmp_path / "eval" / f"released-{name}"
    eval_dir.mkdir(parents=True)
    write_results(results, {"device": "CPU: test", "torch": "2.14.1", "released": {"net": name, "sha256": "ab" * 32}},
                  tmp_path / "metrics" / f"released-{name}.json", eval_dir / "record.json")


def _left_out(tmp_path: Path, name: str) -> None:
    view = {"net": name, "selected": False, "source": "real"}
    not_selected(view, tmp_path / "models" / name, tmp_path / "metrics" / f"released-{name}.json",
                       tmp_path / "eval" / f"released-{name}")


def test_the_page_sets_each_reference_beside_ours_with_the_file_sha(tmp_path):
    (tmp_path / "metrics").mkdir()
    for name in RELEASED:
        _scored(tmp_path, name, 65.43) if name == "voc-fcn8s" else _left_out(tmp_path, name)
    out = page.build_page(page.PageParams("paper", "real", "paper"), tmp_path / "metrics", tmp_path / "eval",
                          tmp_path / "released.md")
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| voc-fcn8s "))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3:7] == ["65.5", "65.51", "65.43", "-0.07"] and cells[-1] == f"`{'ab' * 8}…`" and cells[-2] == "736"
    assert "| voc-fcn16s " in text and "not run" in next(l for l in text.splitlines() if l.startswith("| voc-fcn16s "))
    assert "Smoke profile" not in text and "stand-ins" not in text  # real data, paper scale
    ctx = Context(page.PageParams("paper", "real", "paper"), Path(), tmp_path / "metrics", tmp_path / "eval", Path())
    assert page.column(ctx, ("fcn32s", "fcn16s", "fcn8s")) == {
        "fcn32s": "not run (voc-fcn32s)", "fcn16s": "not run (voc-fcn16s)", "fcn8s": "65.4 (voc-fcn8s)"}
    assert page.column(ctx, ("fcn8s-at-nothing",)) == {}
    assert "released.nets.real" in page.column_note(ctx, {"fcn8s": "x"})[0]


def test_a_left_out_net_stage_ends_without_importing_torch(tmp_path):
    """Eleven such stages run in every smoke pipeline: each must end at once (no torch, no nets imported)."""
    import subprocess
    import sys

    view = tmp_path / "view.json"
    view.write_text(json.dumps({"net": "voc-fcn16s", "selected": False, "source": "twin"}))
    args = ["stages/released.py", "voc-fcn16s", "--view", str(view), "--data", str(tmp_path), "--archives",
            str(tmp_path / "downloads"), "--out", str(tmp_path / "m"), "--metrics", str(tmp_path / "m.json"),
            "--eval-dir", str(tmp_path / "e")]
    code = ("import runpy, sys\nsys.argv = %r\ntry:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\nprint('torch' in sys.modules)" % args)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["voc-fcn16s: not selected (released.nets.twin in params.yaml)", "False"]
    assert json.loads((tmp_path / "m" / "status.json").read_text())["selected"] is False
