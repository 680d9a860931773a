"""Metrics against hand-computed cases (no TensorFlow)."""
import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from common import metrics
from common.errors import ConfigError, ReproError


# Normal scores {0.1, 0.2, 0.3, 0.6}, anomaly scores {0.5, 0.7, 0.8, 0.9}.
# Pairs (anomaly > normal): 0.5 beats 3 of 4 normals, the others beat all 4 -> AUROC = 15/16.
# ROC vertices: (0,0) (0,.25) (0,.5) (0,.75) (.25,.75) (.25,1) (.5,1) (.75,1) (1,1); it meets FPR = 1 - TPR at
# (0.25, 0.75) -> EER = 0.25.
LAB = np.array([0, 0, 0, 0, 1, 1, 1, 1])
SCO = np.array([0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9])


def test_auroc_hand_case():
    assert metrics.auroc(LAB, SCO) == pytest.approx(15 / 16)
    # Orientation: flipping the score flips the AUROC.
    assert metrics.auroc(LAB, -SCO) == pytest.approx(1 / 16)


def test_auroc_ties_count_half():
    # Normal {0.1, 0.5}, anomaly {0.5, 0.9}: pairs win, tie(0.5), win, win -> (3 + 0.5) / 4.
    assert metrics.auroc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)


def test_eer_hand_case_vertex():
    assert metrics.eer(LAB, SCO) == pytest.approx(0.25)


def test_eer_hand_case_on_sloped_segment():
    # Tie at 0.5 makes the ROC segment (0, .5) -> (.5, 1); it crosses FPR + TPR = 1 at (0.25, 0.75).
    assert metrics.eer([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.25)
    # All scores equal: ROC is the diagonal, EER = 0.5.
    assert metrics.eer([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_eer_hand_case_horizontal_step():
    # Normal {0.1, 0.4, 0.7}, anomaly {0.5, 0.8}. ROC: (0,0) (0,.5) (1/3,.5) (1/3,1) (2/3,1) (1,1).
    # Crossing on the vertical step at FPR 1/3 (TPR jumps .5 -> 1 across TPR = 2/3) -> EER = 1/3.
    assert metrics.eer([0, 0, 0, 1, 1], [0.1, 0.4, 0.7, 0.5, 0.8]) == pytest.approx(1 / 3)
    # Normal {0.1, 0.6}, anomaly {0.2, 0.7, 0.8}: ROC (0,0)(0,1/3)(0,2/3)(.5,2/3)(.5,1)(1,1): the horizontal
    # segment TPR = 2/3 crosses the anti-diagonal at FPR = 1/3.
    assert metrics.eer([0, 0, 1, 1, 1], [0.1, 0.6, 0.2, 0.7, 0.8]) == pytest.approx(1 / 3)


def test_eer_perfect_and_inverted():
    assert metrics.eer([0, 0, 1, 1], [0, 1, 2, 3]) == 0.0
    assert metrics.eer([0, 0, 1, 1], [3, 2, 1, 0]) == 1.0


def test_eer_matches_oled_brentq_formula():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 300)
        s = rng.normal(size=300) + 1.2 * y
        fpr, tpr, _ = roc_curve(y, s, pos_label=1)
        ref = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
        assert metrics.eer(y, s) == pytest.approx(ref, abs=1e-6)


def test_one_class_raises_repro_error():
    with pytest.raises(ReproError, match="both classes"):
        metrics.auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ReproError):
        metrics.eer([0, 0], [0.1, 0.2])
    with pytest.raises(ReproError, match="NaN"):
        metrics.auroc([0, 1], [0.1, np.nan])
    with pytest.raises(ReproError, match="length"):
        metrics.auroc([0, 1, 1], [0.1, 0.2])


def test_minmax_and_accuracy():
    np.testing.assert_allclose(metrics.minmax([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(metrics.minmax([5.0, 5.0]), [0.0, 0.0])
    assert metrics.accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    with pytest.raises(ReproError):
        metrics.accuracy([1, 2], [1])


def _two_videos():
    # Video A scores live in [0, 1], video B in [10, 11]: every frame of B outranks every frame of A.
    # A: normal {0.0, 0.2}, anomaly {0.8, 1.0}; B: normal {10.0, 10.2}, anomaly {10.8, 11.0}.
    a_s, a_y = np.array([0.0, 0.2, 0.8, 1.0]), np.array([0, 0, 1, 1])
    b_s, b_y = np.array([10.0, 10.2, 10.8, 11.0]), np.array([0, 0, 1, 1])
    return [a_s, b_s], [a_y, b_y]


def test_frame_level_pooled_vs_per_video_differ():
    s, y = _two_videos()
    # Raw pooled: anomalies {0.8, 1, 10.8, 11} vs normals {0, .2, 10, 10.2}: A's anomalies lose to B's two
    # normals -> 16 - 4 = 12 wins of 16 -> 0.75.
    raw = metrics.frame_level_metrics(s, y, pooling="pooled", normalisation="none")
    assert raw["auroc"] == pytest.approx(0.75)
    # Global min-max is monotone: same AUROC as raw.
    glob = metrics.frame_level_metrics(s, y, pooling="pooled", normalisation="global")
    assert glob["auroc"] == pytest.approx(0.75)
    assert glob["eer"] == pytest.approx(raw["eer"])
    # Per-video min-max aligns the two videos: both become {0, .2, .8, 1} -> perfect separation.
    pv = metrics.frame_level_metrics(s, y, pooling="pooled", normalisation="per_video")
    assert pv["auroc"] == pytest.approx(1.0) and pv["eer"] == pytest.approx(0.0)
    # Averaging per video: each video is perfect on its own.
    avg = metrics.frame_level_metrics(s, y, pooling="per_video", normalisation="none")
    assert avg["auroc"] == pytest.approx(1.0) and avg["n_videos_scored"] == 2
    assert raw["n_frames"] == 8 and raw["n_anomalous_frames"] == 4


def test_frame_level_per_video_skips_single_class_videos():
    s, y = _two_videos()
    s = s + [np.array([0.3, 0.9, 0.5])]
    y = y + [np.array([1, 1, 1])]
    # Video C is all anomalous: it has no ROC of its own and is skipped when averaging per video.
    res = metrics.frame_level_metrics(s, y, pooling="per_video", normalisation="none")
    assert res["n_videos_scored"] == 2 and res["n_videos_skipped"] == 1
    assert res["auroc"] == pytest.approx(1.0)
    with pytest.raises(ReproError):
        metrics.frame_level_metrics([np.array([1.0, 2.0])], [np.array([1, 1])], pooling="per_video")


def test_frame_level_bad_options():
    s, y = _two_videos()
    with pytest.raises(ConfigError):
        metrics.frame_level_metrics(s, y, pooling="mean")
    with pytest.raises(ConfigError):
        metrics.frame_level_metrics(s, y, normalisation="zscore")
    with pytest.raises(ReproError):
        metrics.frame_level_metrics(s, y[:1])


def test_minmax_treats_float_noise_between_equal_scores_as_ties():
    """Defect: identical images got AUROC 0.667, their float32 score noise stretched to [0, 1] by min-max."""
    from oled_tf.evaluate import image_aurocs, normalise

    rng = np.random.default_rng(0)
    labels = np.array([0] * 6 + [1] * 3)
    base = np.float32(523.17)
    raw = {k: (base + rng.integers(-3, 4, labels.size) * np.spacing(base)).astype(np.float32)
           for k in ("s_rec", "s_mask", "s_cont")}
    raw["s_rec"][labels == 1] += 2 * np.spacing(base)  # noise that happens to rank the outliers higher
    np.testing.assert_array_equal(metrics.minmax(raw["s_rec"]), np.zeros(labels.size))
    assert all(v == 0.5 for v in image_aurocs(labels, normalise(raw)).values())
    # A real spread is still normalised.
    np.testing.assert_allclose(metrics.minmax([1000.0, 1001.0, 1000.5]), [0.0, 1.0, 0.5])
