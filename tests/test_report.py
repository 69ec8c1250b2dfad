"""The table renderer: paper / ours / difference, reference rows, smoke warning, provenance."""

from pathlib import Path

from segcore.report import paper
from segcore.report import render as report


def _page(smoke=True, extra=()):
    ours = {"fcn32s-fixed": {"pixel_acc": 80.0, "mean_acc": 50.0, "mean_iu": 40.0, "fw_iu": 70.0},
            "fcn8s": {"pixel_acc": 91.3, "mean_acc": 75.9, "mean_iu": 60.2, "fw_iu": 83.2}}
    info = {"profile": "smoke", "device": "CPU: test (2 threads)"}
    return report.render(paper.TABLE2, ours, info, smoke=smoke, extra=list(extra))


def test_rows_show_paper_ours_and_difference():
    line = next(l for l in _page().splitlines() if l.startswith("| FCN-8s "))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["FCN-8s", "90.3", "91.3", "+1.0"]
    assert cells[7:10] == ["62.7", "60.2", "-2.5"]


def test_missing_result_is_a_dash_not_a_number():
    line = next(l for l in _page().splitlines() if l.startswith("| FCN-16s "))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:4] == ["90.0", "-", ""]


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
    ours = {"t1-vgg16": {"mean_iu": 10.0, "forward_ms": 1705.2, "layers": 16, "params": 134_346_581, "rf": 404,
                         "stride": 32}}
    page = report.render(paper.TABLE1, ours, {"profile": "smoke"}, smoke=True)
    line = next(l for l in page.splitlines() if l.startswith("| FCN-VGG16 "))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:4] == ["56.0", "10.0", "-46.0"]
    assert cells[4:7] == ["210 ms", "1705 ms", "+1495 ms"]
    assert cells[7:10] == ["16", "16", "+0"]
    assert cells[10:13] == ["134M", "134.3M", "+0.3M"]
    assert cells[13:19] == ["404", "404", "+0", "32", "32", "+0"]


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
    main_table = page.split("### Beyond the paper")[0]
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip("|").split("|")]
            for l in main_table.splitlines() if l.startswith("| FCN-")}
    # layers, parameters, rf and stride of the modules the pipeline builds (21 classes)
    assert [rows["FCN-VGG16"][i] for i in (8, 11, 14, 17)] == ["16", "134.3M", "404", "32"]
    assert [rows["FCN-AlexNet"][i] for i in (8, 14, 17)] == ["8", "355", "32"]
    assert rows["FCN-GoogLeNet"][8] == "22" and rows["FCN-GoogLeNet"][14] != "907"
    assert "907 (the paper's figure)" in page and "64 filters instead of 96" in page
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
