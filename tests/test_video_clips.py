"""Video clip sampling (common/video_clips.py): segments and skips, the permutation set, the one-class video
protocol, segment-to-video pooling and the streaming segment pipeline over real .avi files."""
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common import streaming, video_clips as vc
from common.data_video import VideoItem, read_video, video_folder_items
from common.errors import DataError
from tests.fixtures_formats import smooth_frames, write_video_folder


def test_segments_and_skips_give_the_documented_frames():
    # Table VI default: skip 2 -> f1, f4, f7, f10, f13 (0-based 0, 3, 6, 9, 12).
    np.testing.assert_array_equal(vc.segment_frame_indices(13, 5, 2), [[0, 3, 6, 9, 12]])
    # Section III-A: skip 0, Z = N - M + 1 windows one frame apart.
    idx = vc.segment_frame_indices(10, 5, 0)
    assert idx.shape == (6, 5)
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(idx[-1], [5, 6, 7, 8, 9])
    # Hand count, M=3 skip 1 on 8 frames: starts 0..3 -> (0,2,4) (1,3,5) (2,4,6) (3,5,7).
    np.testing.assert_array_equal(vc.segment_frame_indices(8, 3, 1), [[0, 2, 4], [1, 3, 5], [2, 4, 6], [3, 5, 7]])
    for n, m, s in [(16, 5, 2), (30, 6, 3), (5, 5, 0), (4, 5, 0), (12, 5, 2)]:
        assert vc.num_segments(n, m, s) == max(0, n - (m - 1) * (s + 1)) == len(vc.segment_frame_indices(n, m, s))
    assert vc.num_segments(12, 5, 2) == 0 and vc.segment_span(5, 2) == 13
    with pytest.raises(DataError):
        vc.segment_span(5, -1)


@pytest.mark.parametrize("m", [3, 4, 5, 6])
def test_permutation_set_is_a_lexicographic_bijection(m):
    perms = vc.permutation_set(m)
    assert perms.shape == (math.factorial(m), m)
    assert len({tuple(p) for p in perms}) == math.factorial(m)
    assert [tuple(p) for p in perms] == sorted(tuple(p) for p in perms)
    np.testing.assert_array_equal(perms[0], np.arange(m))
    for y in range(0, len(perms), max(1, len(perms) // 50)):
        assert vc.permutation_index(vc.permutation_from_index(y, m)) == y
    seg = np.arange(m) * 10
    y = len(perms) - 1
    np.testing.assert_array_equal(vc.unpermute(vc.permute(seg, y), y), seg)
    t = vc.permute(tf.constant(seg), tf.constant(y, tf.int64), m)
    np.testing.assert_array_equal(t.numpy(), vc.permute(seg, y))
    np.testing.assert_array_equal(vc.unpermute(t, tf.constant(y, tf.int64), m).numpy(), seg)


def test_permutation_operator_on_a_hand_case():
    seg = np.array([10, 20, 30])
    assert vc.permutation_index([0, 2, 1]) == 1 and vc.permutation_index([2, 1, 0]) == 5
    np.testing.assert_array_equal(vc.permute(seg, 1), [10, 30, 20])   # g(s, y)[k] = s[p_y[k]]
    np.testing.assert_array_equal(vc.permute(seg, 3), [20, 30, 10])   # p_3 = (1, 2, 0)
    with pytest.raises(DataError):
        vc.permutation_from_index(6, 3)


def _items():
    return [VideoItem(Path(f"{c}{i}.avi"), label, c) for label, c in enumerate("abc") for i in range(3)]


def test_one_class_protocol_and_split():
    items = _items()
    train, test = vc.split_videos(items, seed=0)
    assert len(train) == 6 and len(test) == 3 and {v.label for v in test} == {0, 1, 2}
    assert vc.split_videos(items, seed=0) == (train, test)
    assert vc.split_videos(items, seed=1) != (train, test)
    oc = vc.one_class_videos(train, test, "b")
    assert oc.normal_class == 1 and [v.label for v in oc.train] == [1, 1]
    np.testing.assert_array_equal(oc.test_labels, [int(v.label != 1) for v in test])   # 1 = anomaly
    assert vc.one_class_videos(train, test, 1).test_labels.tolist() == oc.test_labels.tolist()
    with pytest.raises(DataError, match="not among"):
        vc.one_class_videos(train, test, 7)
    with pytest.raises(DataError, match="at least one other"):
        vc.one_class_videos(train, [v for v in test if v.label == 1], 1)


def test_segment_to_video_pooling():
    scores = [0.1, 0.5, 0.3, 2.0, 0.0]
    vids = [4, 4, 4, 1, 1]
    ids, mean = vc.aggregate_segment_scores(scores, vids)
    np.testing.assert_array_equal(ids, [1, 4])
    np.testing.assert_allclose(mean, [1.0, 0.3])
    _, mx = vc.aggregate_segment_scores(scores, vids, "max")
    np.testing.assert_allclose(mx, [2.0, 0.5])
    with pytest.raises(DataError):
        vc.aggregate_segment_scores(scores, vids, "median")


@pytest.fixture
def videos(tmp_path):
    write_video_folder(tmp_path, {"x": [smooth_frames(9, (16, 20), 1), smooth_frames(10, (16, 20), 2)],
                                  "y": [smooth_frames(8, (16, 20), 3)]})
    return video_folder_items(tmp_path)


def _collect(ds):
    out = {k: [] for k in ("frames", "label", "video", "segment", "video_label")}
    for b in ds.as_numpy_iterator():
        for k in out:
            out[k].append(b[k])
    return {k: np.concatenate(v) for k, v in out.items()}


def test_segment_pipeline_yields_permuted_segments_of_the_decoded_videos(videos):
    m, skip = 3, 1
    ds = vc.segment_dataset(videos, m=m, skip=skip, size=(16, 20), seed=0, training=False, batch_size=8,
                            test_permutations=2)
    got = _collect(ds)
    decoded = [read_video(v.path, size=(16, 20)) for v in videos]
    assert len(got["label"]) == 2 * sum(vc.num_segments(len(d), m, skip) for d in decoded) == 2 * (5 + 6 + 4)
    assert vc.count_segments(videos, m, skip, per_segment=2) == len(got["label"])
    for frames, y, v, s in zip(got["frames"], got["label"], got["video"], got["segment"]):
        clip = decoded[v][vc.segment_frame_indices(len(decoded[v]), m, skip)[s]]
        np.testing.assert_allclose(frames, vc.permute(clip, y) / 255, atol=1e-6)
    pairs = got["label"].reshape(-1, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()                               # distinct labels per segment
    np.testing.assert_array_equal(got["video_label"], [videos[v].label for v in got["video"]])
    # Test labels are fixed: the same in another epoch and another construction.
    again = _collect(vc.segment_dataset(videos, m=m, skip=skip, size=(16, 20), seed=0, training=False,
                                        batch_size=8, start_epoch=4, test_permutations=2))
    np.testing.assert_array_equal(again["label"], got["label"])


def test_training_labels_depend_on_seed_and_epoch_and_resume(videos):
    kw = dict(m=3, skip=0, size=(8, 10), seed=5, training=True, mix_videos=2, batch_size=8)
    two = _collect(vc.segment_dataset(videos, num_epochs=2, **kw))
    n = sum(vc.num_segments(f, 3, 0) for f in (9, 10, 8))
    assert len(two["label"]) == 2 * n == 2 * vc.count_segments(videos, 3, 0) == 2 * (7 + 8 + 6)
    sizes = [len(b["label"]) for b in vc.segment_dataset(videos, num_epochs=2, **kw).as_numpy_iterator()]
    assert sizes == [8, 8, 5] * 2                                              # batches never mix epochs
    first, second = [{(v, s): y for v, s, y in zip(two["video"][k:k + n], two["segment"][k:k + n],
                                                    two["label"][k:k + n])} for k in (0, n)]
    assert len(first) == n and set(first) == set(second)
    assert first != second                                                  # new labels each epoch
    resumed = _collect(vc.segment_dataset(videos, start_epoch=1, num_epochs=1, **kw))
    for k in ("label", "video", "segment"):
        np.testing.assert_array_equal(resumed[k], two[k][n:])
    np.testing.assert_allclose(resumed["frames"], two["frames"][n:])


def test_m_one_streams_every_frame(videos):
    got = _collect(vc.segment_dataset(videos, m=1, skip=0, size=(16, 20), seed=0, training=False, batch_size=32))
    assert len(got["label"]) == 9 + 10 + 8 and (got["label"] == 0).all()
    np.testing.assert_allclose(got["frames"][got["video"] == 2][:, 0], read_video(videos[2].path) / 255, atol=1e-6)


def test_a_video_shorter_than_a_segment_is_a_data_error(videos):
    ds = vc.segment_dataset(videos, m=5, skip=1, size=(16, 20), seed=0, training=False)   # span 9 > 8 frames
    with pytest.raises(DataError, match=r"y_0\.avi has 8 frames, fewer than the 9"):
        with streaming.data_errors():
            _collect(ds)


@pytest.mark.parametrize("n_videos,batch,mix", [(12, 5, 16), (3, 4, 16), (12, 6, 8)])
def test_training_batches_mix_videos(tmp_path, n_videos, batch, mix):
    """Issue 21: a training batch holds segments of min(batch, videos) different videos (the old stream put ~B
    overlapping windows of ONE video in a batch), every segment once per epoch, each video's segments in a
    seeded random order."""
    write_video_folder(tmp_path, {"c": [smooth_frames(8, (8, 10), i) for i in range(n_videos)]})
    items = video_folder_items(tmp_path)
    ds = vc.segment_dataset(items, m=3, skip=0, size=(8, 10), seed=1, training=True, batch_size=batch,
                            num_epochs=1, mix_videos=mix)
    batches = list(ds.as_numpy_iterator())
    for k, b in enumerate(batches):
        left = len({v for later in batches[k:] for v in later["video"].tolist()})   # videos not yet finished
        assert len(set(b["video"].tolist())) >= min(len(b["video"]), n_videos, mix, left), b["video"]
        if n_videos <= mix:                       # all videos in the cycle: min(batch, videos) in every batch
            assert len(set(b["video"].tolist())) >= min(len(b["video"]), n_videos)
    seen = [(v, s) for b in batches for v, s in zip(b["video"], b["segment"])]
    assert len(seen) == len(set(seen)) == n_videos * 6
    first = [s for v, s in seen if v == seen[0][0]]
    assert first != sorted(first)                                     # not in temporal order
