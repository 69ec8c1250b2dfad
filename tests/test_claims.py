"""The claims check on hand-made metrics: a claim that holds, one that does not, one whose inputs are missing."""

from segcore.report import claims


def _metrics(**by_experiment):
    return lambda name: by_experiment.get(name)


def _claim(key: str) -> claims.Claim:
    return next(c for c in claims.CLAIMS if c.key == key)


def test_a_claim_that_holds_one_that_does_not_and_one_with_missing_inputs():
    metrics = _metrics(**{"fcn32s": {"seg11valid": {"mean_iu": 20.0}}, "fcn16s": {"seg11valid": {"mean_iu": 25.0}},
                          "fcn8s": {"seg11valid": {"mean_iu": 24.0}}, "fcn32s-fixed": {"seg11valid": {"mean_iu": 9.5}}})
    held = claims.judge(_claim("t2-all-layers"), metrics)
    assert held.holds is True and held.values == {"32s-fixed": 9.5, "32s": 20.0}
    failed = claims.judge(_claim("t2-skips"), metrics)  # 16s > 8s: the second skip hurt
    assert failed.holds is False and not failed.missing
    missing = claims.judge(_claim("t4-hha-below-rgb"), metrics)  # no NYUD metrics at all
    assert missing.holds is None
    assert missing.missing == ("nyud-hha test mean_iu", "nyud-rgb test mean_iu")


def test_a_missing_split_or_a_non_number_counts_as_missing_not_as_failed():
    metrics = _metrics(**{"unet-isbi": {"heldout": {"rand_error": 0.1}}, "unet-isbi-noborder": {"heldout": {}}})
    verdict = claims.judge(_claim("unet-border-weights"), metrics)
    assert verdict.holds is None and verdict.missing == ("unet-isbi-noborder heldout rand_error",)
    metrics = _metrics(**{"fcn8s": {"seg11valid": {"mean_iu": 30.0}, "voc2012_test": {"submitted_images": 1456}}})
    assert claims.judge(_claim("t3-test-near-val"), metrics).holds is None  # real test: only an archive


def test_lower_is_better_for_rand_error_and_geometry_is_against_chance():
    better = _metrics(**{"unet-isbi": {"heldout": {"rand_error": 0.1}},
                         "unet-isbi-noborder": {"heldout": {"rand_error": 0.3}}})
    assert claims.judge(_claim("unet-border-weights"), better).holds is True
    geo = claims.judge(_claim("t5-geometry"), _metrics(**{"sift-fcn16s": {"test": {"geo_acc": 60.0}}}))
    assert geo.holds is False  # below twice a uniform guess over 3 classes (66.7%)


def test_page_counts_and_marks_each_verdict():
    metrics = _metrics(**{"fcn32s-fixed": {"seg11valid": {"mean_iu": 5.0}}, "fcn32s": {"seg11valid": {"mean_iu": 9.0}}})
    verdicts = claims.judge_all(metrics)
    page = claims.claims_page(verdicts, smoke=True, header={"profile": "smoke"})
    assert f"1 of {len(claims.CLAIMS)} claims hold" in page
    row = next(line for line in page.splitlines() if "training all layers" in line)
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[0] == "FCN Table 2" and cells[2:] == ["32s-fixed 5.0, 32s 9.0", "holds"]
    assert "not tested (inputs missing)" in page and "Smoke profile" in page


def test_seeds_page_counts_how_often_each_claim_holds():
    run = lambda a, b: claims.judge_all(_metrics(**{"fcn32s-fixed": {"seg11valid": {"mean_iu": a}},  # noqa: E731
                                                   "fcn32s": {"seg11valid": {"mean_iu": b}}}))
    page = claims.seeds_page({"seed 0": run(1.0, 2.0), "seed 1": run(3.0, 2.0), "seed 2": run(1.0, 4.0)})
    row = next(line for line in page.splitlines() if "training all layers" in line)
    assert [cell.strip() for cell in row.split("|")[2:6]] == ["holds", "does not hold", "holds", "2 of 3"]
    assert "3 runs (seed 0, seed 1, seed 2). 1 of the" in page
