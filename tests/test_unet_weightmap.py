"""U-Net weight map (Eq. 2): border bonus, class balancing, separation of touching cells."""

import math

import numpy as np
import pytest

from segcore.data.weightmap import (W0, cell_instances, class_weights, nearest_two_distances,
                               separate_touching, weight_map)


def two_cells(gap: int = 1) -> np.ndarray:
    """(40, 60) binary: two 30 x 24 rectangles side by side, `gap` px apart."""
    label = np.zeros((40, 60), np.uint8)
    label[5:35, 5:29] = 1
    label[5:35, 29 + gap: 53 + gap] = 1
    return label


def test_bonus_is_w0_in_a_one_pixel_gap_and_decays():
    label = two_cells(gap=1)
    wm = weight_map(label)
    bonus = wm.weight - weight_map(label, border_weights=False).weight
    assert bonus[20, 29] == pytest.approx(W0 * math.exp(-4 / 50), rel=1e-5)  # d1 = d2 = 1
    assert bonus[2, 29] < bonus[20, 29] and bonus[0, 29] < bonus[2, 29]  # out of the gap, upwards
    assert bonus[20, 1] < 1e-6 and bonus[38, 58] < 1e-3  # far from the second cell
    assert (bonus[label == 1] == 0).all() and wm.target.dtype == np.int64


def test_single_cell_gets_no_bonus():
    label = np.zeros((30, 30), np.uint8)
    label[8:20, 5:25] = 1
    with_border = weight_map(label).weight
    assert np.array_equal(with_border, weight_map(label, border_weights=False).weight)


def test_class_balancing_values():
    label = np.ones((8, 8), np.uint8)
    label[:, :2] = 0  # 16 membrane, 48 cell pixels
    assert class_weights(label) == (3.0, 1.0)
    wm = weight_map(label, border_weights=False)
    assert set(np.unique(wm.weight).tolist()) == {1.0, 3.0}
    assert (wm.weight[:, :2] == 3.0).all() and wm.weight.dtype == np.float32
    assert class_weights(np.ones((4, 4), np.int64)) == (1.0, 1.0)  # absent class: 1
    custom = weight_map(label, border_weights=False, class_weight=(2.0, 0.5)).weight
    assert custom[0, 0] == 2.0 and custom[0, 5] == 0.5


def test_touching_instances_get_separated():
    inst = np.zeros((20, 30), np.int32)
    inst[3:17, 3:15], inst[3:17, 15:27] = 1, 2  # touching along a column
    sep = separate_touching(inst)
    assert (sep[3:17, 14:16] == 0).all() and (sep[3:17, 3:14] == 1).all() and (sep[3:17, 16:27] == 2).all()
    wm = weight_map(inst, instance_labels=True)
    assert (wm.target[3:17, 14:16] == 0).all()
    assert wm.weight[10, 14] > wm.weight[1, 1] + 5  # the new border carries the bonus


def test_distances_and_components():
    label = two_cells(gap=3)
    inst = cell_instances(label)
    assert inst.max() == 2
    d1, d2 = nearest_two_distances(inst, reach=100)
    assert d1[20, 30] == 2 and d2[20, 30] == 2 and d1[20, 10] == 0 and d2[20, 10] == 22
    diag = np.zeros((5, 5), np.uint8)
    diag[1, 1] = diag[2, 2] = 1  # diagonal neighbours are two cells under 4-connectivity
    assert cell_instances(diag).max() == 2


def test_bad_labels():
    with pytest.raises(ValueError, match=r"only 0 \(membrane\) and 1 \(cell\), found \[0, 255\]"):
        weight_map(np.array([[0, 255], [255, 255]], np.uint8))
    with pytest.raises(ValueError, match="non-negative"):
        weight_map(np.array([[0, -1]]), instance_labels=True)
    with pytest.raises(ValueError, match="sigma"):
        weight_map(two_cells(), sigma=0)
