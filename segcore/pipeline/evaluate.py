"""The evaluate stages: score a trained net on its splits at native resolution.

Scores go to metrics/<net>.json (flat numbers), what produced them to eval/<net>/record.json
(segcore.eval.results).
"""

from __future__ import annotations

from pathlib import Path

from segcore.core import atomic
from segcore.core.device import environment, place
from segcore.core.progress import track
from segcore.data import specs as datasets
from segcore.data import voc
from segcore.eval.isbi import evaluate_isbi
from segcore.report import results
from segcore.eval.metrics import per_class_iu, predicted_classes, scores
from segcore.eval.predict import accumulate_heads, predict, write_submission
from segcore.models import heads
from segcore.models.modelfile import load_model
from segcore.train.experiments import Experiment, get_experiment


def _percent(d: dict[str, float]) -> dict[str, float]:
    return {k: round(100 * v, 4) for k, v in d.items()}


def split_scores(exp: Experiment, hists: list, images: int) -> tuple[dict, dict]:
    """Metrics (percent) and per-class IU of one split from its per-head confusion matrices.

    The first head gives the four metrics of the paper; every further head its pixel accuracy
    (SIFT Flow: ``geo_acc``). SIFT Flow's means skip classes absent from the split's ground truth,
    found from the matrix, and the result names them.
    """
    spec = datasets.spec(exp)
    classes, exclude = spec.heads, spec.exclude_absent
    first, *others = classes
    metrics = _percent(scores(hists[0], exclude_absent=exclude))
    metrics.update({f"{name}_acc": round(100 * scores(h)["pixel_acc"], 4) for name, h in zip(others, hists[1:])})
    per_class = {name or "iu": per_class_iu(h, list(names)) for (name, names), h in zip(classes.items(), hists)}
    # How many classes the first head predicted at all (record, not a score): one means the net gives
    # every pixel the same class, and the reports flag it instead of reading its scores as a result.
    predicted = predicted_classes(hists[0])
    metrics[results.CLASSES_PREDICTED] = len(predicted)
    if len(predicted) == 1:
        metrics[results.ONE_CLASS] = classes[first][predicted[0]]
    if exclude:
        absent = [c for c, rows in zip(classes[first], hists[0].sum(1)) if rows == 0]
        per_class["absent_from_ground_truth"] = absent
        metrics["classes_scored"] = len(classes[first]) - len(absent)
    metrics["images"] = images
    return metrics, (per_class if len(per_class) > 1 else per_class["iu"])


def evaluate_experiment(view: dict, data_root: Path, model_path: Path, metrics_out: Path, eval_dir: Path,
                        device: str = "cpu", hha_root: Path | None = None, progress: bool = True,
                        exp: Experiment | None = None) -> dict:
    """Score the val split (and each test split where labels exist) into one metrics JSON.

    ``view``: the experiment's resolved params (segcore.pipeline.views.evaluate). Keeps the first
    ``figure_images`` val predictions as palette PNGs for the report's figure; where a test split's
    labels are withheld (real VOC), writes its evaluation-server archive
    ``<split>_submission.tar.gz`` instead. An optional test split absent from disk is skipped.
    ``exp``: what to score, when it is not a trained experiment (a released net, segcore.pipeline.released).
    """
    exp = exp or get_experiment(view["experiment"])
    model, _, record = load_model(Path(model_path))
    place(model, device, view["runtime"]["channels_last"])
    produced_by = {**view["provenance"], **environment(device), "trained_on": record.get("trained_on"),
                   "training_data": record.get("training_data")}
    if record.get("released"):  # the authors' file it was converted from (name, sha256)
        produced_by["released"] = record["released"]

    def score(tmp: Path) -> dict:
        scores_of = _score_into(tmp, view, exp, model, record, Path(data_root), device, hha_root, progress)
        results.write(scores_of, produced_by, Path(metrics_out), tmp / results.RECORD)
        return scores_of

    # Everything goes into a temp folder renamed over eval_dir at the end: a failed evaluation leaves
    # the previous folder whole (and no metrics file is written before the scores exist). The metrics
    # file (scores only) is written just before the rename; the record (counts, provenance) inside it.
    scores_of = atomic.build_dir(Path(eval_dir), score)
    return results.combined(*results.split(scores_of, produced_by))


def _score_into(eval_dir: Path, view: dict, exp: Experiment, model, record: dict, data_root: Path, device: str,
                hha_root: Path | None, progress: bool = True) -> dict:
    """The splits' scores ({split: metrics}); predictions, per-class IU and figure data written under eval_dir."""
    keep, channels_last = view["figure_images"], view["runtime"]["channels_last"]
    inputs = datasets.Inputs.from_record(record)
    (eval_dir / "preds").mkdir(parents=True)
    metrics: dict = {}
    spec = datasets.spec(exp)
    if spec.scoring == "isbi":  # the challenge's scores on held-out slices, by overlap-tile inference
        metrics[exp.val_split] = evaluate_isbi(model, inputs.rgb, data_root, view["eval_tile"], eval_dir, device)
        return metrics
    n_classes = datasets.n_classes(exp)
    split_of = lambda split: datasets.split_dataset(exp, split, data_root, hha_root, inputs)  # noqa: E731
    shown = lambda split, images: track(images, f"evaluate {split}", unit="images", enabled=progress)  # noqa: E731
    val = split_of(exp.val_split)
    hists, kept = accumulate_heads(model, shown(exp.val_split, val), n_classes, device, keep=keep,
                                   channels_last=channels_last)
    metrics[exp.val_split], per_class_val = split_scores(exp, hists, len(val))
    for sample_id, pred in kept.items():
        voc.write_label_png(eval_dir / "preds" / f"{sample_id}.png", pred, heads.sizes(n_classes)[0])
    per_class = {exp.val_split: per_class_val}
    for split in exp.test_splits:
        test = split_of(split)
        if not len(test):  # an optional split not on disk (real VOC2011 test): no entry, the report says so
            continue
        folder = spec.server_test.get(split)
        archive = eval_dir / f"{split}_submission.tar.gz"
        if folder and test.samples[0].label is None:  # real VOC test: labels live on the evaluation server
            preds = ((sid, predict(model.eval(), x, device, channels_last).numpy()) for x, _, sid in shown(split, test))
            metrics[split] = {"submitted_images": write_submission(preds, voc.palette(), archive, folder)}
            continue
        # Labelled (the twin): scored here, and a server split still gets its archive, so the path a
        # real run takes to the evaluation server is exercised by every profile.
        hists, kept = accumulate_heads(model, shown(split, test), n_classes, device, keep=len(test) if folder else 0,
                                       channels_last=channels_last)
        metrics[split], per_class[split] = split_scores(exp, hists, len(test))
        if folder:
            metrics[split]["submitted_images"] = write_submission(kept.items(), voc.palette(), archive, folder)
    atomic.write_json(eval_dir / "per_class_iu.json", per_class)
    return metrics
