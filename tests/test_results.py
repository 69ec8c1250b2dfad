"""Metrics files hold flat scores only; counts and provenance go to the record, and both join back."""

import json

from segcore.report import results

SCORED = {"seg11valid": {"mean_iu": 31.7, "pixel_acc": 79.5, "images": 32},
          "heldout": {"rand_error": 0.32, "rand_error_threshold": 0.3, "heldout_slices": "8,9"}}
PRODUCED_BY = {"profile": "smoke", "device": "CPU: test (2 threads)", "trained_on": {"processes": 1}}


def test_metrics_file_has_flat_numbers_and_the_record_has_the_rest(tmp_path):
    results.write(SCORED, PRODUCED_BY, tmp_path / "m.json", tmp_path / "record.json")
    flat = json.loads((tmp_path / "m.json").read_text())
    assert flat == {"seg11valid.mean_iu": 31.7, "seg11valid.pixel_acc": 79.5, "heldout.rand_error": 0.32}
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["profile"] == "smoke" and record["trained_on"] == {"processes": 1}
    assert record["splits"] == {"seg11valid": {"images": 32},
                                "heldout": {"rand_error_threshold": 0.3, "heldout_slices": "8,9"}}


def test_the_two_files_join_back_into_the_per_split_view(tmp_path):
    results.write(SCORED, PRODUCED_BY, tmp_path / "m.json", tmp_path / "record.json")
    assert results.read(tmp_path / "m.json", tmp_path / "record.json") == {**PRODUCED_BY, **SCORED}
    assert results.nested({"fcn32s_channels_last_bf16.mean_ms": 5.0}) == {"fcn32s_channels_last_bf16": {"mean_ms": 5.0}}


def test_the_stage_line_names_headline_scores_with_their_units():
    line = results.headline({**PRODUCED_BY, **SCORED})
    assert line == "seg11valid mean IU 31.7%, heldout Rand error 0.3200"
