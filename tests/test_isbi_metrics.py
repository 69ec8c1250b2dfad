"""ISBI 2012 scores on hand-made cases (spec/unet.md)."""

import numpy as np
import pytest

from segcore.eval.isbi_scores import (cells, neighbour_codes, rand_pair_counts, score_stack,
                                  simple_point_table, split_merge_pixels, warp_ground_truth,
                                  warp_mask)

N = 33 * 33


def grid_gt(rows=(0, 16, 32), cols=(0, 16, 32)) -> np.ndarray:
    """(33, 33) labels: 255 cells, 0 membrane lines at the given rows and columns (4 cells)."""
    gt = np.full((33, 33), 255, np.uint8)
    gt[list(rows), :] = 0
    gt[:, list(cols)] = 0
    return gt


def prob_of(labels: np.ndarray) -> np.ndarray:
    return (labels == 255).astype(np.float64)


def test_identical_scores_zero():
    gt = grid_gt()
    s = score_stack(prob_of(gt), gt)
    for key in ("pixel_error", "pixel_error_plain", "rand_error", "warping_error"):
        assert s[key] == 0.0, key


def test_shifted_boundary_costs_no_warping_error():
    gt = grid_gt(cols=(0, 15, 16, 17, 32))  # a 3 px wide vertical membrane
    pred = grid_gt(rows=(0, 17, 32), cols=(0, 17, 18, 19, 32))  # moved by 1 and 2 px
    s = score_stack(prob_of(pred), gt)
    assert s["warping_error"] == 0.0
    assert s["pixel_error"] > 0 and s["pixel_error_plain"] == pytest.approx((2 * 28 + 4 * 29) / N)
    assert s["rand_error"] > 0


def test_shift_beyond_a_thin_membrane_is_a_topological_error():
    # Greedy descent flips only disagreeing pixels: a 1 px membrane moved by 2 px would need the
    # pixel between to leave one cell for the other through the membrane, so it is stuck.
    gt, pred = grid_gt(), grid_gt(cols=(0, 18, 32))
    assert score_stack(prob_of(pred), gt)["warping_error"] > 0


def split_case() -> tuple[np.ndarray, np.ndarray]:
    gt = grid_gt()
    pred = gt.copy()
    pred[8, 1:16] = 0  # a membrane line cutting the top-left cell in two
    return gt, pred


def test_split_costs_its_pixels_beyond_the_warps_reach():
    gt, pred = split_case()
    # radius 0: cell pixels cannot move, the whole 15 px line is a split
    assert score_stack(prob_of(pred), gt, radius=0)["warping_error"] == pytest.approx(15 / N)
    # radius 5: membrane may grow 5 px from each side; columns 6..10 stay a split
    s = score_stack(prob_of(pred), gt)
    assert s["warping_error"] == pytest.approx(5 / N) and s["splits"] == 5 and s["merges"] == 0
    assert s["rand_error"] > 0


def test_merge_costs_its_pixels():
    gt = grid_gt()
    pred = gt.copy()
    pred[1:16, 16] = 255  # the membrane between the two top cells is missing
    s = score_stack(prob_of(pred), gt)
    assert s["warping_error"] == pytest.approx(15 / N) and s["merges"] == 15 and s["splits"] == 0
    assert s["rand_error"] > 0


def test_rand_pair_counts_by_hand_and_relabelling():
    gt = np.array([[1, 1, 1, 1, 0, 2]])
    assert rand_pair_counts(gt, np.array([[5, 5, 7, 7, 0, 0]])).tolist() == [2, 2, 6]
    assert rand_pair_counts(gt, np.array([[0, 0, 0, 0, 3, 3]])).tolist() == [0, 0, 6]  # background: singletons
    labels = cells(grid_gt() == 255)
    relabelled = np.where(labels > 0, 10 - labels, 0)
    both, proposal, truth = rand_pair_counts(labels, relabelled)
    assert both == proposal == truth > 0


def test_simple_points():
    table = simple_point_table()
    code = lambda a: neighbour_codes(np.array(a, bool))[1, 1]  # noqa: E731
    assert not table[code([[0, 0, 0], [0, 1, 0], [0, 0, 0]])]  # isolated: deleting removes a cell
    assert not table[code([[1, 1, 1], [1, 0, 1], [1, 1, 1]])]  # filling closes a hole
    assert not table[code([[0, 1, 0], [0, 1, 0], [0, 1, 0]])]  # on a 1-px wide line: would cut it
    assert not table[code([[1, 0, 0], [0, 0, 0], [0, 0, 1]])]  # diagonal touch is not 4-connected
    assert table[code([[1, 1, 1], [0, 0, 0], [0, 0, 0]])]  # on a straight boundary
    assert table[code([[1, 1, 0], [1, 0, 0], [0, 0, 0]])]  # a corner


def test_warp_keeps_topology_and_classifies():
    gt, pred = split_case()
    warped = warp_ground_truth(gt == 255, pred == 255, warp_mask(gt == 255))
    assert cells(warped).max() == cells(gt == 255).max()  # still 4 cells, no cut
    split, merge = split_merge_pixels(warped, pred == 255)
    assert np.flatnonzero(split[8]).tolist() == list(range(6, 11)) and not merge.any()


def test_stack_sums_counts_and_picks_thresholds():
    gt, pred = split_case()
    s = score_stack(np.stack([prob_of(pred), prob_of(gt)]), np.stack([gt, gt]))
    assert s["warping_error"] == pytest.approx(5 / (2 * N))
    soft = np.where(gt == 255, 0.9, 0.25)  # perfect from threshold 0.3 on
    s = score_stack(soft, gt, warping=False)
    assert s["pixel_error"] == 0 and s["pixel_error_threshold"] == 0.3 and "warping_error" not in s


def test_bad_inputs():
    gt = grid_gt()
    with pytest.raises(ValueError, match=r"255 = cell, 0 = membrane.*\[0, 128\]"):
        score_stack(prob_of(gt), np.where(gt == 255, 128, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        score_stack(prob_of(gt) * 2, gt)
    with pytest.raises(ValueError, match="as many prediction slices"):
        score_stack([prob_of(gt)], [gt, gt])
