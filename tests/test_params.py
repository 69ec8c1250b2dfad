"""params.yaml validation: YAML 1.2 floats, unknown keys, wrong types, ranges, profiles."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from segcore.config.schema import ConfigError, load_yaml
from segcore.config.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((ROOT / "params.yaml").read_text().replace("1e-4", "0.0001").replace("5e-4", "0.0005"))
    edit(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_params_are_valid_and_default_to_smoke():
    params = load_params(ROOT / "params.yaml")
    assert params.profile == "smoke"
    assert params.data_source == "twin" and params.scale_name == "smoke"
    assert params.lr == pytest.approx(1e-4) and isinstance(params.lr, float)


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("1e-05", 1e-5), ("1.0e-5", 1e-5), ("2E-3", 2e-3),
                                         ("0.5", 0.5), (".5", 0.5), ("3", 3)])
def test_scientific_notation_is_a_number(tmp_path, text, value):
    # PyYAML alone returns the string '1e-05' here: what `dvc exp run -S lr=1e-5` writes (trap 1).
    path = tmp_path / "p.yaml"
    path.write_text(f"lr: {text}\n")
    assert load_yaml(path)["lr"] == value
    assert not isinstance(load_yaml(path)["lr"], str)


def test_paper_profile_switches_data_and_scale_and_overrides_work(tmp_path):
    params = load_params(_write(tmp_path, lambda d: d.update(profile="paper")))
    assert (params.data_source, params.scale_name, params.width) == ("real", "paper", 1.0)
    params = load_params(_write(tmp_path, lambda d: d.update(profile="paper", data="twin")))
    assert (params.data_source, params.scale_name) == ("twin", "paper")


def test_stage_learning_rates_follow_lr():
    params = load_params(ROOT / "params.yaml")
    r = params.recipe
    assert params.base_lr(0) == pytest.approx(params.lr * r.lr_multiplier)
    assert params.base_lr(2) == pytest.approx(params.lr * r.lr_multiplier * r.stage_lr_factor ** 2)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(profile="fast"), "profile = 'fast' is not allowed; use one of: smoke, paper"),
    (lambda d: d.update(lr="fast"), "lr = 'fast' must be a number"),
    (lambda d: d.update(lr=-1.0), "lr = -1.0 is out of range; it must be > 0.0"),
    (lambda d: d.update(lrr=1.0), "unknown key lrr"),
    (lambda d: d["train"]["smoke"]["schedules"].update(voc=2.5), "train.smoke.schedules.voc = 2.5 must be an integer"),
    (lambda d: d["train"]["smoke"]["schedules"].update(voc=0), "train.smoke.schedules.voc = 0 is out of range; it must be >= 1"),
    (lambda d: d["train"]["paper"].pop("momentum"), "missing key train.paper.momentum"),
    (lambda d: d["net"]["smoke"].update(width=2), "net.smoke.width = 2.0 is out of range; it must be <= 1.0"),
    (lambda d: d["train"]["smoke"].update(normalise_loss="yes"), "train.smoke.normalise_loss = 'yes' must be true or false"),
    (lambda d: d["runtime"].update(numerics="fast"), "runtime.numerics = 'fast' is not allowed; use one of: portable, native"),
    (lambda d: d["runtime"].update(threads=0), "runtime.threads = 0 is out of range; it must be >= 1"),
    (lambda d: d["runtime"].update(deterministic="on"), "runtime.deterministic = 'on' must be true or false"),
])
def test_bad_params_name_the_key(tmp_path, edit, message):
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, edit))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _stage(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    return stage


def test_bad_params_stop_the_params_stage_with_one_line_and_exit_2(tmp_path, capsys):
    from segcore.pipeline import cli

    path = _write(tmp_path, lambda d: d.update(profile="fast"))
    out = tmp_path / "resolved"
    assert cli.run(_stage("params").main, ["--params", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: profile = 'fast' is not allowed; use one of: smoke, paper; {path} keeps this value until you fix "
        f"it: git checkout {path} restores the committed one"]
    assert not out.exists()


def _drop(path: str):
    def edit(d):
        *parents, last = path.split(".")
        for k in parents:
            d = d[k]
        del d[last]
    return edit


def _set(path: str, value):
    def edit(d):
        *parents, last = path.split(".")
        for k in parents:
            d = d[k]
        d[last] = value
    return edit


BAD_PARAMS = [  # (edit of params.yaml, what the one error line must name); tests/test_pipeline.py runs some through DVC
    (_set("profile", "foo"), "profile = 'foo' is not allowed"),
    (_set("data", "foo"), "data = 'foo' is not allowed"),
    (_set("scale", "big"), "scale = 'big' is not allowed"),
    (_set("lr", 1e3), "lr = 1000.0 is out of range"),
    (_set("lr", "fast"), "lr = 'fast' must be a number"),
    (_set("lr", float("nan")), "lr = nan must be a finite number"),
    (_set("lr", float("inf")), "lr = inf must be a finite number"),
    (_set("seed", "x"), "seed = 'x' must be an integer"),
    (_set("seed", -1), "seed = -1 is out of range"),
    (_set("net.smoke.width", 0), "net.smoke.width = 0.0 is out of range"),
    (_set("twin.voc.min_size", 8), "twin.voc.min_size = 8 is out of range"),
    (_set("twin.voc.min_size", 1000), "twin.voc.min_size = 1000 must be <= twin.voc.max_size"),
    (_set("twin.siftflow.n_unannotated", 50), "twin.siftflow.n_unannotated = 50 must be < twin.siftflow.n_train"),
    (_set("nyud.val_fraction", 1.5), "nyud.val_fraction = 1.5 is out of range"),
    (_set("train.smoke.schedules.voc", 0), "train.smoke.schedules.voc = 0 is out of range"),
    (_drop("train.smoke.schedules.voc_skip"), "schedules has no 'voc_skip'"),
    (_set("train.smoke.optimizer", "rmsprop"), "train.smoke.optimizer = 'rmsprop' is not allowed"),
    (_drop("backbone.smoke.iterations.alexnet"), "backbone.smoke.iterations names"),
    (_set("unet.smoke.eval_tile", 50), "must be 16k + 4"),
    (_set("timing.size", 0), "timing.size = 0 is out of range"),
    (_set("runtime.device", "gpu"), "runtime.device = 'gpu' is not allowed"),
    (_set("backbone.paper.weights.alexnet", "IMAGENET1K_V1"),
     "backbone.paper.weights.alexnet = IMAGENET1K_V1 is not allowed (no torchvision weights fit its layout); "
     "use caffe"),
    (_set("backbone.paper.weights.googlenet", "caffe"),
     "backbone.paper.weights.googlenet = caffe is not allowed (no Caffe weights fit its layout); use IMAGENET1K_V1"),
    (_set("runtime.launch", "echo injected > injected.txt; python"), "runtime.launch = 'echo injected"),
    (_set("learning_rate", 1e-3), "unknown key learning_rate"),
    (_drop("evaluate"), "missing key evaluate"),
    (_set("released.nets.twin", ["voc-fcn64s"]), "released.nets.twin names 'voc-fcn64s'; allowed: voc-fcn32s"),
    (_set("released.nets.twin", "voc-fcn8s"), "released.nets.twin = 'voc-fcn8s' must be a list"),
]


@pytest.mark.parametrize("edit, message", BAD_PARAMS, ids=[m.split(" ")[0] for _, m in BAD_PARAMS])
def test_every_bad_value_stops_the_params_stage_with_one_line_and_exit_2(tmp_path, capsys, edit, message):
    from segcore.pipeline import cli

    params = load_yaml(ROOT / "params.yaml")
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = tmp_path / "resolved"
    assert cli.run(_stage("params").main, ["--params", str(path), "--out", str(out)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], errors
    assert not out.exists()


def test_bad_argument_stops_a_stage_with_one_line_and_exit_2(tmp_path, capsys):
    from segcore.pipeline import cli

    resolved = tmp_path / "resolved"
    assert cli.run(_stage("params").main, ["--params", str(ROOT / "params.yaml"), "--out", str(resolved)]) == 0
    out = tmp_path / "bb.pt"
    argv = ["--view", str(resolved / "backbone/vgg16.json"), "resnet50", "--out", str(out)]
    assert cli.run(_stage("backbone").main, argv) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: unknown backbone 'resnet50'; allowed: vgg16, alexnet, googlenet"]
    assert not out.exists()


def test_an_internal_bug_keeps_its_traceback(tmp_path):
    """A ValueError that is not a UserError is a bug: cli.run lets it through, traceback and all."""
    from segcore.pipeline import cli

    def main(argv):
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        cli.run(main, [])


def test_table1_learning_rates_follow_lr():
    # Paper profile: Sec. 4.3's fixed rates 1e-3, 1e-4, 5e-5 for AlexNet, VGG16, GoogLeNet at lr 1e-4 ...
    params = load_params(ROOT / "params.yaml")
    paper = dataclasses.replace(params, profile="paper")
    from segcore.train.experiments import EXPERIMENTS
    from segcore.pipeline.views import train_spec

    rates = {n: train_spec(paper, EXPERIMENTS[n]).lr for n in ("t1-alexnet", "t1-vgg16", "t1-googlenet")}
    assert rates == pytest.approx({"t1-alexnet": 1e-3, "t1-vgg16": 1e-4, "t1-googlenet": 5e-5})
    # ... and `-S lr=` moves all three together, in either profile.
    for base in (paper, params):
        moved = dataclasses.replace(base, lr=base.lr / 10)
        for name in rates:
            assert train_spec(moved, EXPERIMENTS[name]).lr == pytest.approx(train_spec(base, EXPERIMENTS[name]).lr / 10)
    # Table 1 trains its own schedule, Table 2's skip stages theirs.
    assert train_spec(paper, EXPERIMENTS["t1-vgg16"]).iterations == paper.train.paper.schedules["voc2011"]
    assert train_spec(paper, EXPERIMENTS["fcn16s"]).lr == pytest.approx(1e-6)


def test_table4_schedules_and_rates():
    from segcore.train.experiments import EXPERIMENTS
    from segcore.pipeline.views import train_spec

    params = load_params(ROOT / "params.yaml")
    r = params.recipe
    steps = {n: train_spec(params, e).iterations for n, e in EXPERIMENTS.items() if e.dataset == "nyud"}
    nyud, fusion = r.schedules["nyud"], r.schedules["nyud_fusion"]
    assert steps == {"nyud-rgb": nyud, "nyud-rgbd": nyud, "nyud-hha": nyud, "nyud-rgbhha": fusion,
                     "nyud-rgbhha16s": fusion}
    # the 16s fusion is a skip stage: its rate drops by the stage factor, as FCN-16s on VOC
    assert train_spec(params, EXPERIMENTS["nyud-rgbhha16s"]).lr == pytest.approx(params.base_lr(1))
    assert EXPERIMENTS["nyud-rgbhha"].parents == ("nyud-rgb", "nyud-hha")
