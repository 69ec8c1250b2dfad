"""Elastic deformation on a coarse grid (spec/unet.md), shift/rotation, grey values."""

import numpy as np
import pytest

from segcore.data.augment import augment, elastic_field, sampling_grid


def sample(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((33, 41))
    label = np.where(rng.random((33, 41)) > 0.4, 255, 0).astype(np.uint8)
    weight = (rng.random((33, 41)) + label / 255).astype(np.float32)
    return image, label, weight


def test_zero_displacement_is_identity():
    image, label, weight = sample()
    out = augment(image, label, np.random.default_rng(3), weight, elastic_std=0, max_shift=0,
                  max_rotation=0, brightness=0, contrast=0)
    np.testing.assert_allclose(out.image, image, atol=1e-6)
    assert np.array_equal(out.label, label) and np.array_equal(out.weight, weight)


def test_labels_stay_in_their_set_and_pairs_with_weights():
    image, label, weight = sample()
    out = augment(image, label, np.random.default_rng(1), weight)
    assert set(np.unique(out.label).tolist()) <= {0, 255} and out.label.dtype == np.uint8
    pairs = set(zip(label.ravel().tolist(), weight.ravel().tolist()))
    assert set(zip(out.label.ravel().tolist(), out.weight.ravel().tolist())) <= pairs
    assert not np.array_equal(out.label, label)


def test_field_interpolates_the_grid_nodes_with_10px_std():
    field = elastic_field((21, 31), np.random.default_rng(5))
    nodes = np.random.default_rng(5).normal(0, 10, size=(2, 3, 3))
    np.testing.assert_allclose(field[:, ::10, ::15], nodes, atol=1e-9)  # passes through the nodes
    rng = np.random.default_rng(0)
    at_nodes = np.concatenate([elastic_field((21, 21), rng)[:, ::10, ::10].ravel() for _ in range(300)])
    assert at_nodes.std() == pytest.approx(10.0, rel=0.05) and abs(at_nodes.mean()) < 0.5


def test_deterministic_given_a_seed():
    image, label, weight = sample()
    a = augment(image, label, np.random.default_rng(7), weight)
    b = augment(image, label, np.random.default_rng(7), weight)
    c = augment(image, label, np.random.default_rng(8), weight)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a.image, c.image)


def test_identity_grid_and_errors():
    coords = sampling_grid((5, 7), np.random.default_rng(0), elastic_std=0, max_rotation=0)
    np.testing.assert_allclose(coords, np.mgrid[0:5, 0:7], atol=1e-12)
    with pytest.raises(ValueError, match="same \\(H, W\\) shape"):
        augment(np.zeros((4, 4)), np.zeros((4, 5), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="grid >= 2"):
        elastic_field((4, 4), np.random.default_rng(0), grid=1)
