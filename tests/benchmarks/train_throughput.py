"""Benchmark (not a test): training throughput of FCN-VGG16 at the paper's input size.

Run: python tests/benchmarks/train_throughput.py                 (full size, CUDA when present)
     python tests/benchmarks/train_throughput.py --width 0.125 --size 250 --steps 3   (quick CPU)

The paper's recipe: one 500x500 image per forward, a batch of 20 as gradient accumulation of 20
single-image passes, SGD momentum 0.9, lr 1e-4, weight decay 5e-4, per-image normalised loss.
Each step here is ``--images-per-step`` such passes and one optimizer step, on one fixed random
image and random labels 0..20 (no data loading is timed). Variants: fp32 (on CUDA, cuDNN runs
fp32 convs as TF32 unless disabled, so they are compared with the TF32 ceilings) and mixed
precision: bf16 autocast where supported, else fp16 autocast with a GradScaler. bf16 autocast on a
CPU without AMX / avx512_bf16 is much slower than fp32.

Printed per variant: images/s, ms per image, achieved training FLOP/s (3 x the forward FLOPs from
segcore.report.flops), that as a fraction of the nominal peak (known GPUs only) and of a measured large
matmul in the same precision, and the peak CUDA memory. Then, from the fastest variant's achieved
FLOP/s, an estimate of the paper profile's training time on this device: every net of
segcore.train.experiments, its paper schedule (params.yaml) times its minibatch, each image costed
by its net's training FLOPs at the real data set's image size. An estimate from one measured net:
nets with other layer shapes reach other FLOP rates, and validation and evaluation are not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from segcore.config.params import load_params
from segcore.core.device import describe, environment, pick_device, synchronize
from segcore.data import specs as datasets
from segcore.pipeline.views import train_spec
from segcore.train.experiments import EXPERIMENTS
from segcore.report.flops import forward_flops, measured_matmul_flops, peak_flops, training_flops
from segcore.models.registry import build_model, input_channels
from segcore.train.runtime import Runtime, mixed_precision
from segcore.train.loop import TrainSpec, _train_step, make_optimizer

VARIANTS = ("fp32", "mixed", "bf16", "fp16")
# A typical training input of each real data set (rows, columns): VOC images are at most 500 px on a
# side, most 375 x 500; NYUD's 425 x 560 crops; SIFT Flow's 256 x 256; ISBI's 512 x 512 slices.
REAL_INPUT = {"voc": (375, 500), "nyud": (425, 560), "siftflow": (256, 256), "isbi": (512, 512)}
ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu, cuda:1 ...")
    p.add_argument("--model", default="fcn32s", help="registry name (default fcn32s: FCN-VGG16)")
    p.add_argument("--classes", type=int, default=21, help="PASCAL VOC: 20 classes + background")
    p.add_argument("--width", type=float, default=1.0, help="VGG16 channel scale in (0, 1]")
    p.add_argument("--size", type=int, default=500, help="square input side (paper: up to 500)")
    p.add_argument("--images-per-step", type=int, default=1, help="accumulated passes (paper: 20)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (cuDNN autotuning, caches)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fp32", "mixed"],
                   help="mixed = bf16 where supported, else fp16")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC model and input (default on)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    for name in ("classes", "size", "images_per_step", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def resolve(variant: str, device: torch.device) -> str:
    """'fp32', 'bf16' or 'fp16': `mixed` as the pipeline resolves it (params runtime.precision)."""
    return mixed_precision(device) if variant == "mixed" else variant


def ceiling_precision(precision: str, device: torch.device) -> str:
    """Precision of the ceilings: fp32 convs run as TF32 on CUDA when cuDNN allows it (default)."""
    if precision == "fp32" and device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return precision


def time_training(args: argparse.Namespace, device: torch.device, precision: str) -> dict:
    """Seconds of each timed optimizer step of a fresh net trained in `precision`, and peak CUDA memory.

    The step is the pipeline's own (segcore.train.loop._train_step with a segcore.train.runtime.Runtime), so
    the figures include what training does around the convolutions: per-pass transfer of the
    image, dropout seeding, loss scaling.
    """
    runtime = Runtime(device, precision, channels_last=args.channels_last)
    torch.manual_seed(0)
    model = runtime.place(build_model(args.model, n_classes=args.classes, width=args.width)).train()
    spec = TrainSpec(lr=1e-4, momentum=0.9, weight_decay=5e-4, bias_lr_mult=2.0, batch_size=args.images_per_step,
                     iterations=args.warmup + args.steps, normalise_loss=True, val_every=1, checkpoint_every=1, seed=0)
    optimizer, scaler = make_optimizer(model, spec), runtime.grad_scaler()
    image = torch.randn(input_channels(model), args.size, args.size)  # (C_in, S, S), on the host like loaded data
    label = torch.randint(0, args.classes, (args.size, args.size))  # (S, S)
    items = [(image, label, "bench")] * args.images_per_step

    def step(i: int) -> None:
        _train_step(model, optimizer, scaler, items, i, spec, args.classes, runtime)

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup):
        step(i)
    times = []
    for i in range(args.warmup, args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        step(i)
        synchronize(device)
        times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"step_s": times, "peak_memory_gib": memory}


def measure(args: argparse.Namespace, device: torch.device, variant: str, flops_per_image: int,
            ceilings: dict[str, float]) -> dict:
    """One variant's row: throughput, achieved FLOP/s and the fractions of the ceilings."""
    precision = resolve(variant, device)
    ceiling = ceiling_precision(precision, device)
    if ceiling not in ceilings:
        ceilings[ceiling] = measured_matmul_flops(device, ceiling)
    timed = time_training(args, device, precision)
    seconds = sum(timed["step_s"])
    images = args.steps * args.images_per_step
    achieved = flops_per_image * images / seconds
    peak = peak_flops(device, ceiling)
    return {"variant": variant, "precision": precision, "ceiling_precision": ceiling,
            "images_per_s": images / seconds, "ms_per_image": 1000 * seconds / images,
            "median_step_s": statistics.median(timed["step_s"]),
            "achieved_flops": achieved, "peak_flops": peak,
            "fraction_of_peak": achieved / peak if peak else None,
            "matmul_flops": ceilings[ceiling], "fraction_of_matmul": achieved / ceilings[ceiling],
            "peak_memory_gib": timed["peak_memory_gib"]}


def table(rows: list[dict]) -> str:
    """Fixed-width text table of the rows."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"
    lines = [f"{'variant':8s} {'precision':10s} {'img/s':>8s} {'ms/img':>9s} {'TFLOP/s':>8s} "
             f"{'%peak':>7s} {'matmul TF/s':>11s} {'%matmul':>8s} {'mem GiB':>8s}"]
    for r in rows:
        mem = "n/a" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
        prec = r["precision"] + ("/tf32" if r["ceiling_precision"] != r["precision"] else "")
        lines.append(f"{r['variant']:8s} {prec:10s} {r['images_per_s']:8.3f} {r['ms_per_image']:9.1f} "
                     f"{r['achieved_flops'] / 1e12:8.3g} {pct(r['fraction_of_peak']):>7s} "
                     f"{r['matmul_flops'] / 1e12:11.3g} {pct(r['fraction_of_matmul']):>8s} {mem:>8s}")
    return "\n".join(lines)


def dag_experiments() -> list[str]:
    """The nets dvc.yaml trains: the items of its train* stage families (the registry holds a few more)."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return [item for name, stage in stages.items() if name.startswith("train") for item in stage["foreach"]]


def paper_run_estimate(flops_per_s: float, params_path: Path = ROOT / "params.yaml") -> list[dict]:
    """Training hours of each net of the paper profile at ``flops_per_s`` (see the module docstring)."""
    import dataclasses

    params = load_params(params_path)
    paper = dataclasses.replace(params, profile="paper", data="real", scale="paper")
    rows = []
    for exp in (EXPERIMENTS[name] for name in dag_experiments()):
        spec = train_spec(paper, exp)
        width = paper.unet_recipe.width if exp.arch == "unet" else paper.width
        channels = datasets.in_channels(exp)
        with torch.device("meta"):
            net = build_model(exp.arch, n_classes=datasets.n_classes(exp), width=width, in_channels=channels)
        per_image = training_flops(forward_flops(net, (1, channels, *REAL_INPUT[exp.dataset])))
        images = spec.iterations * spec.batch_size
        rows.append({"experiment": exp.name, "steps": spec.iterations, "images": images,
                     "tflop_per_image": per_image / 1e12, "hours": images * per_image / flops_per_s / 3600})
    return rows


def estimate_table(rows: list[dict], variant: str, flops_per_s: float) -> str:
    lines = [f"paper profile, training only, at {variant}'s {flops_per_s / 1e12:.3g} TFLOP/s:",
             f"{'net':20s} {'steps':>7s} {'images':>9s} {'TFLOP/img':>10s} {'hours':>9s}"]
    lines += [f"{r['experiment']:20s} {r['steps']:7d} {r['images']:9d} {r['tflop_per_image']:10.3f} "
              f"{r['hours']:9.1f}" for r in rows]
    total = sum(r["hours"] for r in rows)
    lines.append(f"{'total':20s} {'':7s} {'':9s} {'':10s} {total:9.1f}  ({total / 24:.1f} days)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = pick_device(args.device)
    with torch.device("meta"):  # FLOPs from shapes alone
        meta = build_model(args.model, n_classes=args.classes, width=args.width)
    forward = forward_flops(meta, (1, input_channels(meta), args.size, args.size))
    per_image = training_flops(forward)
    print(f"device: {describe(device)}")
    print(f"{args.model} width {args.width}, {args.classes} classes, {args.size}x{args.size}, "
          f"{args.images_per_step} image(s)/step, {args.steps} steps after {args.warmup} warm-up, "
          f"channels_last {args.channels_last}")
    print(f"FLOPs per image: forward {forward / 1e9:.1f} G, training (3 x forward) {per_image / 1e9:.1f} G")
    ceilings: dict[str, float] = {}
    rows = [measure(args, device, v, per_image, ceilings) for v in dict.fromkeys(args.variants)]
    print(table(rows))
    fastest = max(rows, key=lambda r: r["achieved_flops"])
    estimate = paper_run_estimate(fastest["achieved_flops"])
    print(estimate_table(estimate, fastest["variant"], fastest["achieved_flops"]))
    if args.json:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        result = {**environment(device), "config": config, "forward_flops_per_image": forward,
                  "training_flops_per_image": per_image, "variants": {r["variant"]: r for r in rows},
                  "paper_run_estimate": {"variant": fastest["variant"], "nets": estimate}}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
