import numpy as np
import pytest

from common.errors import DataError
from common.floors import PCAFloor, pca_floor_auroc


def test_pca_floor_scores_off_subspace_images_higher():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 64))
    train = rng.normal(size=(200, 3)) @ basis
    inl = rng.normal(size=(20, 3)) @ basis
    out = rng.normal(size=(20, 64)) * 3.0
    s = PCAFloor(n_components=3).fit(train.reshape(200, 8, 8, 1)).score(np.concatenate([inl, out]).reshape(40, 8, 8, 1))
    assert np.all(s[:20] < 1e-9) and np.all(s[20:] > 1.0)
    y = np.r_[np.zeros(20), np.ones(20)]
    assert pca_floor_auroc(train, np.concatenate([inl, out]), y, n_components=3) == 1.0


def test_pca_floor_hand_case_and_shape_error():
    # Training data on the x-axis: PCA-1 reconstructs (a, b) as (a, 0), error b^2 (mean is 0).
    train = np.array([[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    f = PCAFloor(n_components=1).fit(train)
    np.testing.assert_allclose(f.score(np.array([[0.5, 3.0], [1.0, -1.0]])), [9.0, 1.0], atol=1e-12)
    with pytest.raises(DataError, match="values each"):
        f.score(np.zeros((2, 3)))
