"""The table renderer: paper / ours / difference, reference rows, smoke warning, provenance."""

from pathlib import Path

from segcore.report import paper
from segcore.report import render as report


def _page(smoke=True, extra=()):
    ours = {"fcn32s-fixed": {"pixel_acc": 80.0, "mean_acc": 50.0, "mean_iu": 40.0, "fw_iu": 70.0},
            "fcn8s": {"pixel_acc": 91.3, "mean_acc": 75.9, "mean_iu": 60.2, "fw_iu": 83.2}}
    info = {"profile": "smoke", "device": "CPU: test (2 threads)"}
    return report.render(paper.TABLE2, ours, info, smoke=smoke, extra=list(extra))


def _cells(page: str, label: str) -> list[str]:
    line = next(l for l in page.splitlines() if l.startswith(f"| {label} "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_paper_profile_rows_show_paper_ours_and_difference():
    cells = _cells(_page(smoke=False), "FCN-8s")
    assert cells[:4] == ["FCN-8s", "90.3", "91.3", "+1.0"]
    assert cells[7:10] == ["62.7", "60.2", "-2.5"]
    assert "*diff.* = ours - paper" in _page(smoke=False)


def test_smoke_rows_have_no_difference_column():
    """A smoke number is not comparable with the paper's: no 'diff.' column, no difference cells."""
    page = _page(smoke=True)
    cells = _cells(page, "FCN-8s")
    assert cells[:3] == ["FCN-8s", "90.3", "91.3"] and cells[5:7] == ["62.7", "60.2"]
    assert "diff." not in page and "+1.0" not in page


def test_missing_result_is_a_dash_not_a_number():
    assert _cells(_page(smoke=False), "FCN-16s")[1:4] == ["90.0", "-", ""]
    assert _cells(_page(smoke=True), "FCN-16s")[1:3] == ["90.0", "-"]


def test_titles_name_the_split_this_run_scored():
    page = report.render(paper.TABLE4, {}, {}, smoke=True, scored="16 test images")
    assert page.splitlines()[0] == "# Table 4: NYUDv2, RGB and depth (40 classes): 16 test images scored"
    assert "654" not in page.splitlines()[0]


def test_reference_rows_are_marked_and_units_kept():
    ours = {"fcn8s": {"voc2011_test": None, "voc2012_test": 50.0, "inference_ms": 1832.0}}
    page = report.render(paper.TABLE3, ours, {"profile": "paper"}, smoke=False)
    assert "SDS *(reference, as published)*" in page
    assert "1832 ms" in page and "+1657 ms" in page
    assert "Smoke profile" not in page


def test_smoke_pages_say_they_are_not_a_reproduction_and_carry_provenance():
    page = _page()
    assert "not* a reproduction" in page
    assert "CPU: test (2 threads)" in page
    assert "do not edit by hand" in page


def test_extra_rows_are_marked_beyond_the_paper():
    page = _page(extra=[("U-Net", {"mean_iu": 12.0})])
    assert "U-Net *(beyond the paper)*" in page


def test_table1_units_counts_millions_and_milliseconds():
    """Accuracy and time in one table, the architecture in a second: 19 columns in one were unreadable."""
    ours = {"t1-vgg16": {"mean_iu": 10.0, "forward_ms": 1705.2, "layers": 16, "params": 134_346_581, "rf": 404,
                         "stride": 32}}
    page = report.render(paper.TABLE1, ours, {"profile": "paper"}, smoke=False)
    assert _cells(page, "FCN-VGG16")[1:7] == ["56.0", "10.0", "-46.0", "210 ms", "1705 ms", "+1495 ms"]
    arch = report.table_block(paper.TABLE1_ARCH, ours, smoke=False)
    cells = _cells(arch, "FCN-VGG16")
    assert cells[1:7] == ["16", "16", "+0", "134M", "134.3M", "+0.3M"]
    assert cells[7:13] == ["404", "404", "+0", "32", "32", "+0"]
    assert len(_cells(report.table_block(paper.TABLE1_ARCH, ours, smoke=True), "FCN-VGG16")) == 9


def test_one_timing_trial_has_no_spread():
    assert report.trials_text({"mean_ms": 12.34, "std_ms": 0.0, "trials": 1}) == "12.3 (1 trial)"
    assert report.trials_text({"mean_ms": 12.34, "std_ms": 0.5, "trials": 3}) == "12.3 ± 0.5 (mean ± std of 3 trials)"
    assert report.trials_phrase({"trials": 1}) == "one trial"


def test_table1_page_measures_the_full_size_nets(tmp_path):
    from segcore.config.params import load_params
    from segcore.report.table1 import TABLE1_EXPERIMENTS, build_table1

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    metrics = {n: {"voc2011_val": {"mean_iu": 20.0 + i, "images": 48}} for i, n in enumerate(TABLE1_EXPERIMENTS)}
    entry = {"mean_ms": 100.0, "std_ms": 1.0, "trials": 3, "warmup": 1, "size": 500, "dtype": "float32",
             "device": "CPU: test (2 threads)", "torch": "x"}
    timing = {m: dict(entry) for m in ("fcn-alexnet", "fcn32s", "fcn-googlenet")}
    timing["fcn32s_channels_last_bf16"] = {**entry, "mean_ms": 50.0}
    page = build_table1(params, metrics, timing, {"profile": "smoke"}, True, tmp_path / "table1.md").read_text()
    assert page.splitlines()[0].endswith(": 48 voc2011_val images scored")
    arch_table = page.split("### Table 1, architecture")[1].split("### Beyond the paper")[0]
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip("|").split("|")]
            for l in arch_table.splitlines() if l.startswith("| FCN-")}
    # layers, parameters, rf and stride of the modules the pipeline builds (21 classes); smoke: no diff.
    assert [rows["FCN-VGG16"][i] for i in (2, 4, 6, 8)] == ["16", "134.3M", "404", "32"]
    assert [rows["FCN-AlexNet"][i] for i in (2, 4, 6, 8)] == ["8", "57.0M", "355", "32"]
    assert rows["FCN-GoogLeNet"][2] == "22" and rows["FCN-GoogLeNet"][6] != "907"
    assert "907 (the paper's figure)" in page
    # FCN-AlexNet is the paper's CaffeNet, and its footnote says so (not torchvision's 64-filter AlexNet).
    assert "96 conv1 filters, LRN after pool1 and pool2" in page and "bvlc_reference_caffenet" in page
    assert "64 filters" not in page
    assert "mean of 3 trials" in page and "CPU: test (2 threads)" in page
    assert "channels_last_bf16" in page and "(no SBD)" in page


def test_code_version_ignores_pipeline_outputs_but_not_code(tmp_path):
    import subprocess

    from segcore.report.tables import code_version

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@localhost", "PATH": "/usr/bin:/bin"})

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "table1.md").write_text("old")
    (tmp_path / "params.yaml").write_text("lr: 1e-4\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "x")
    (tmp_path / "reports" / "table1.md").unlink()  # what DVC does before rerunning the report stage
    assert "uncommitted" not in code_version(tmp_path)
    (tmp_path / "params.yaml").write_text("lr: 1e-5\n")
    assert code_version(tmp_path).endswith("(with uncommitted changes)")


def test_fraction_units_print_plain_decimals():
    from segcore.report.render import _diff, _fmt

    assert [_fmt(v, "frac") for v in (0.000005, 0.0382, 0.0069580078)] == ["0.000005", "0.0382", "0.006958"]
    assert _diff(0.345, 0.0382, "frac") == "+0.3068" and _diff(0.0001, 0.0003, "frac") == "-0.0002"


def _narrow_params(source: str):
    """Only the attributes a report may read (segcore.report.context.ReportParams), as the report stage passes."""
    from types import SimpleNamespace

    from segcore.config.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    return SimpleNamespace(profile=params.profile, data_source=source, scale_name=params.scale_name, lr=params.lr,
                           width=params.width, recipe=params.recipe, unet_recipe=params.unet_recipe,
                           twin=params.twin if source == "twin" else None,
                           net=SimpleNamespace(learn_upsampling=params.net.learn_upsampling))


def test_data_line_describes_the_data_set_and_the_scored_split():
    from segcore.report.context import data_line
    from segcore.train.experiments import EXPERIMENTS

    metrics = {"seg11valid": {"images": 32}, "test": {"images": 16}, "heldout": {"slices": 2}}
    real, twin = _narrow_params("real"), _narrow_params("twin")
    assert (data_line(real, EXPERIMENTS["fcn8s"], metrics, "seg11valid")
            == "PASCAL VOC2011/2012 + SBD, md5-verified downloads; trained on sbd_train, 32 seg11valid images")
    assert (data_line(real, EXPERIMENTS["sift-fcn16s"], metrics, "test", trained=False)
            == "SIFT Flow (2,488 / 200 split, 2 unannotated training images dropped); 16 test images")
    t = twin.twin.isbi
    assert (data_line(twin, EXPERIMENTS["unet-isbi"], metrics, "heldout", trained=False)
            == f"synthetic ISBI 2012 twin (segcore.data.twin_isbi, seed {t.seed}, {t.n_slices} slices of "
               f"{t.size} x {t.size}); 2 held-out slices")


def test_table1_notes_read_only_the_report_params():
    from segcore.config.params import load_params
    from segcore.report.table1 import TABLE1_EXPERIMENTS, first_stage_lr, table1_notes
    from segcore.train.experiments import EXPERIMENTS

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    for name in TABLE1_EXPERIMENTS:
        backbone = EXPERIMENTS[name].backbone
        assert first_stage_lr(_narrow_params("twin"), backbone) == params.base_lr(0, backbone)
    metrics = {TABLE1_EXPERIMENTS[0]: {"voc2011_val": {"images": 48}}}
    entry = {"size": 500, "dtype": "float32", "trials": 3, "warmup": 1, "device": "CPU", "torch": "x"}
    timing = {EXPERIMENTS[TABLE1_EXPERIMENTS[0]].arch: entry}
    assert "scored on all 48 voc2011_val images" in table1_notes(_narrow_params("real"), metrics, timing,
                                                                  "voc2011_val")[0]


def test_every_registered_table_is_a_report_output_in_dvc_yaml():
    import yaml

    from segcore.report.tables import TABLES

    stage = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]["report"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]}
    assert {f"reports/{name}.md" for name in TABLES} <= outs


def test_index_lists_every_page_and_figure_with_one_line(tmp_path):
    from segcore.report.index import build_index

    (tmp_path / "table2.md").write_text("# Table 2: skips\n\n![Training curves](curves.png)\n\n*Training curves*\n")
    (tmp_path / "claims.md").write_text("# The papers' findings\n")
    index = build_index([tmp_path / "table2.md", tmp_path / "curves.png", tmp_path / "claims.md"],
                        tmp_path / "README.md").read_text()
    items = [line for line in index.splitlines() if line.startswith("- ")]
    assert items[:3] == ["- [table2.md](table2.md): Table 2: skips",
                         "- [claims.md](claims.md): The papers' findings",
                         "- [curves.png](curves.png): Training curves (shown in table2.md)"]
    assert items[3].startswith("- claims-seeds.md: ") and "make claims-seeds" in items[3]


def test_figure_legend_names_the_classes_shown_and_nothing_else():
    import numpy as np

    from segcore.data import voc
    from segcore.report.figures import classes_present

    labels = [np.array([[0, 15], [255, 15]]), np.array([[7, 0]])]
    legend = classes_present(labels, list(voc.CLASSES), voc.palette())
    assert [name for name, _ in legend] == [voc.CLASSES[0], voc.CLASSES[7], voc.CLASSES[15]]
    assert legend[2][1] == tuple(voc.palette()[45:48])
