"""Confusion matrix and the paper's four metrics on hand-made cases."""

import numpy as np
import pytest

from segcore.eval.metrics import confusion, per_class_iu, scores


def test_confusion_drops_void_and_counts_true_by_predicted():
    label = np.array([[0, 0, 1, 255], [2, 2, 1, 1]])
    pred = np.array([[0, 1, 1, 2], [2, 0, 1, 1]])
    hist = confusion(label, pred, 3)
    assert hist.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    assert hist.sum() == 7  # the void pixel is not scored


def test_four_metrics_match_hand_computation():
    hist = np.array([[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    s = scores(hist)
    assert s["pixel_acc"] == pytest.approx(5 / 7)
    assert s["mean_acc"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    ius = [1 / (2 + 2 - 1), 3 / (3 + 4 - 3), 1 / (2 + 1 - 1)]
    assert s["mean_iu"] == pytest.approx(np.mean(ius))
    assert s["fw_iu"] == pytest.approx((2 * ius[0] + 3 * ius[1] + 2 * ius[2]) / 7)


def test_absent_class_is_skipped_unless_predicted():
    # class 2 absent from GT and never predicted: skipped, not a NaN mean
    hist = np.array([[2, 0, 0], [0, 2, 0], [0, 0, 0]])
    assert scores(hist)["mean_iu"] == pytest.approx(1.0)
    # class 2 absent from GT but predicted once: counts IU 0 (reference code)
    hist = np.array([[2, 0, 1], [0, 2, 0], [0, 0, 0]])
    assert scores(hist)["mean_iu"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # SIFT Flow rule: absent classes leave every mean
    assert scores(hist, exclude_absent=True)["mean_iu"] == pytest.approx((2 / 3 + 1) / 2)


def test_matrix_accumulates_over_images_not_averaged_per_image():
    a = confusion(np.zeros((10, 10)), np.zeros((10, 10)), 2)
    b = confusion(np.ones((1, 2)), np.zeros((1, 2)), 2)
    assert scores(a + b)["pixel_acc"] == pytest.approx(100 / 102)


def test_empty_matrix_is_an_error_and_per_class_names():
    with pytest.raises(ValueError, match="empty"):
        scores(np.zeros((2, 2)))
    assert per_class_iu(np.array([[1, 0], [0, 0]]), ["bg", "cat"]) == {"bg": 1.0, "cat": None}
