"""Video clip sampling for frame-permutation self-supervision (Ali, Khan, Kyung; ../shared/papers/permutation.md
Section III-A, Eq. 1, Tables V-VI) and the one-class video protocol (Section IV-B).

Segments (Section III-A with the frame skip of Table VI). A video of N frames f_1..f_N (0-based here: 0..N-1)
gives segments of M frames taken every ``skip + 1`` frames: segment ``t`` (t = 0, 1, ...) holds frames
``t, t + (skip+1), ..., t + (M-1)(skip+1)``; skip 2 gives f1, f4, f7, f10, f13 (the paper's default), skip 0 the
M consecutive frames of the paper's Z = N - M + 1 windows. Consecutive segments start one frame apart, so a
segment spans ``(M-1)(skip+1) + 1`` frames and a video holds

    Z = N - (M-1)(skip+1)      segments (0 if N is shorter than one span; with skip 0, Z = N - M + 1).

Permutations (Eq. 1). The label set is all M! permutations of (0..M-1) in lexicographic order; label ``y``
(0-based here, the paper's y_i in [1, M!] minus one) is the y-th of them, label 0 the identity. The permutation
operator g(s, y) puts frame ``p_y[k]`` of the segment at position k: ``g(s, y)[k] = s[p_y[k]]``.

Scores. The anomaly score of a segment is decided by the method; :func:`aggregate_segment_scores` pools a video's
segment scores into one video score (mean by default, max available).

Streaming. :func:`segment_dataset` decodes videos (OpenCV via :func:`common.data_video.read_video` in
``tf.numpy_function``), cuts their segments, permutes them and yields ``(permuted segment, permutation label)``
with the video and segment they came from. In training, ``mix_videos`` decoded videos are interleaved one
segment at a time (each video's segments in a seeded random order), so a batch of B consecutive segments holds
segments of min(B, mix_videos, videos left in the epoch) different videos, not B overlapping windows of one
video. Training labels are drawn per (seed, epoch, video, segment); test labels per (seed, video, segment), the
same in every epoch and run.
``m=1`` streams single frames (every ``skip+1``-th), for frame-level baselines.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tensorflow as tf

from common.data_video import (MAX_M, MIN_M, VideoItem, check_segment as _check, num_segments,  # noqa: F401
                               read_video, segment_span, video_frame_count)
from common.errors import DataError
from common.streaming import epoch_order

LABEL_SALT, TEST_LABEL_SALT, SEGMENT_SHUFFLE_SALT = 0x504C, 0x544C, 0x5353
MIX_VIDEOS = 24   # decoded videos interleaved in a training stream (memory: this many decoded videos at once)

__all__ = ["segment_span", "num_segments", "segment_frame_indices", "permutation_set", "permutation_index",
           "permutation_from_index", "permute", "unpermute", "OneClassVideos", "one_class_videos",
           "split_videos", "aggregate_segment_scores", "count_segments", "segment_dataset"]


# ------------------------------------------------------------------------------------------------ segments
def segment_frame_indices(n_frames: int, m: int, skip: int = 0) -> np.ndarray:
    """(Z, M) int64: row t = frames t, t+(skip+1), ..., t+(M-1)(skip+1) (0-based)."""
    z = num_segments(n_frames, m, skip)
    return (np.arange(z)[:, None] + np.arange(m)[None, :] * (skip + 1)).astype(np.int64)


# -------------------------------------------------------------------------------------------- permutations
@lru_cache(maxsize=None)
def _perms(m: int) -> np.ndarray:
    out = np.array(list(itertools.permutations(range(m))), np.int32)
    out.setflags(write=False)
    return out


def permutation_set(m: int) -> np.ndarray:
    """All M! permutations of 0..M-1 in lexicographic order, (M!, M) int32; row y is label y."""
    _check(m, 0)
    return _perms(int(m))


def permutation_index(perm) -> int:
    """Label (0-based lexicographic rank, Lehmer code) of a permutation of 0..M-1."""
    perm = [int(v) for v in perm]
    m = len(perm)
    if sorted(perm) != list(range(m)):
        raise DataError(f"{perm} is not a permutation of 0..{m - 1}")
    rank, rest = 0, list(range(m))
    for k, v in enumerate(perm):
        pos = rest.index(v)
        rank += pos * math.factorial(m - 1 - k)
        rest.pop(pos)
    return rank


def permutation_from_index(index: int, m: int) -> np.ndarray:
    """The permutation with label ``index`` (0 <= index < M!)."""
    perms = permutation_set(m)
    if not 0 <= int(index) < len(perms):
        raise DataError(f"permutation index must be 0..{len(perms) - 1} for M={m}, not {index}")
    return perms[int(index)].copy()


def permute(segment, index, m: int | None = None):
    """g(s, y) of Eq. 1: ``out[k] = segment[p_y[k]]`` along the first axis. numpy in, numpy out; a tensor (also
    inside tf.data / tf.function, ``index`` a tensor) gives a tensor."""
    if isinstance(segment, np.ndarray) and not tf.is_tensor(index):
        m = m or segment.shape[0]
        return segment[permutation_from_index(int(index), m)]
    m = m or segment.shape[0]
    order = tf.gather(tf.constant(permutation_set(m)), index)
    return tf.gather(segment, order)


def unpermute(segment, index, m: int | None = None):
    """The inverse of :func:`permute`: ``unpermute(permute(s, y), y) == s``."""
    m = m or segment.shape[0]
    inverse = np.argsort(permutation_set(m), axis=1).astype(np.int32)
    if isinstance(segment, np.ndarray) and not tf.is_tensor(index):
        return segment[inverse[int(index)]]
    return tf.gather(segment, tf.gather(tf.constant(inverse), index))


# ----------------------------------------------------------------------------------- one-class protocol
@dataclass
class OneClassVideos:
    """Train: the normal class's training videos; test: the test videos of all classes with ``test_labels``
    int64 (1 = anomaly, i.e. another class; 0 = the normal class)."""

    train: list[VideoItem]
    test: list[VideoItem]
    test_labels: np.ndarray
    normal_class: int
    normal_name: str


def one_class_videos(train_items: list[VideoItem], test_items: list[VideoItem], normal_class) -> OneClassVideos:
    """One-vs-all (Section IV-B): train on the videos of ``normal_class`` (label or class name), test on every
    test video, the other classes being anomalies."""
    names = {i.label: i.class_name for i in list(train_items) + list(test_items)}
    if isinstance(normal_class, str) and not normal_class.lstrip("-").isdigit():
        match = [lab for lab, n in names.items() if n.lower() == normal_class.lower()]
        if not match:
            raise DataError(f"normal class {normal_class!r} is not among the classes {sorted(names.values())[:10]}")
        normal = match[0]
    else:
        normal = int(normal_class)
        if normal not in names:
            raise DataError(f"normal class {normal} is not among the labels {sorted(names)}")
    train = [i for i in train_items if i.label == normal]
    if not train:
        raise DataError(f"no training video of the normal class {names[normal]!r} ({normal})")
    labels = np.asarray([int(i.label != normal) for i in test_items], np.int64)
    if labels.size == 0 or labels.min() == labels.max():
        raise DataError(f"the test videos must include the normal class {names[normal]!r} and at least one other "
                        f"class; found {int((labels == 0).sum())} normal and {int(labels.sum())} anomalous")
    return OneClassVideos(train, list(test_items), labels, normal, names[normal])


def split_videos(items: list[VideoItem], test_fraction: float = 1 / 3, seed: int = 0):
    """A seeded per-class split of a video folder without split folders: in each class round(n * test_fraction)
    videos (at least one, if the class has two) go to test; the rest, in listing order, to train."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), not {test_fraction}")
    train, test = [], []
    for label in sorted({i.label for i in items}):
        cls = [i for i in items if i.label == label]
        k = min(len(cls) - 1, max(1, round(len(cls) * test_fraction))) if len(cls) > 1 else 0
        chosen = set(np.random.default_rng([int(seed), int(label)]).permutation(len(cls))[:k].tolist())
        train += [v for j, v in enumerate(cls) if j not in chosen]
        test += [v for j, v in enumerate(cls) if j in chosen]
    return train, test


def aggregate_segment_scores(scores, video_ids, how: str = "mean"):
    """Pool segment scores into video scores: (sorted unique video ids, their ``how``-pooled scores) with
    ``how`` "mean" (default) or "max"."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    video_ids = np.asarray(video_ids).reshape(-1)
    if scores.shape != video_ids.shape:
        raise DataError(f"{scores.size} segment scores for {video_ids.size} video ids")
    if how not in ("mean", "max"):
        raise DataError(f"segment-to-video pooling must be 'mean' or 'max', not {how!r}")
    ids, inverse = np.unique(video_ids, return_inverse=True)
    if how == "mean":
        out = np.bincount(inverse, weights=scores, minlength=len(ids)) / np.bincount(inverse, minlength=len(ids))
    else:
        out = np.full(len(ids), -np.inf)
        np.maximum.at(out, inverse, scores)
    return ids, out


# --------------------------------------------------------------------------------------------- streaming
def _labels(seed_vec, z, m: int, k: int):
    """(z, k) permutation labels, distinct within a row, uniformly drawn from the M! labels."""
    if k == 1:
        return tf.random.stateless_uniform(tf.stack([z, 1]), seed_vec, 0, math.factorial(m), dtype=tf.int64)
    u = tf.random.stateless_uniform(tf.stack([z, math.factorial(m)]), seed_vec)
    return tf.cast(tf.argsort(u, axis=1)[:, :k], tf.int64)


def count_segments(items: list[VideoItem], m: int, skip: int, max_frames: int | None = None,
                   per_segment: int = 1) -> int:
    """Examples in one epoch of :func:`segment_dataset` (``per_segment`` = ``test_permutations`` at test time),
    from the frame counts of the container headers / frame folders (:func:`common.data_video.video_frame_count`)
    without decoding. With Keras, stream endlessly and pass ceil(count / batch) as ``steps_per_epoch``."""
    total = 0
    for item in items:
        n = video_frame_count(item.path)
        total += num_segments(n if max_frames is None else min(n, max_frames), m, skip)
    return total * per_segment


def segment_dataset(items: list[VideoItem], *, m: int = 5, skip: int = 2, size=(225, 225), seed: int,
                    training: bool, batch_size: int | None = None, start_epoch: int = 0,
                    num_epochs: int | None = 1, test_permutations: int = 1, mix_videos: int = MIX_VIDEOS,
                    max_frames: int | None = None, num_parallel_calls=tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Stream (permuted segment, permutation label) pairs from decoded videos (Section III-A, Eq. 1).

    Each video is decoded when the pipeline reaches it (frames resized to ``size=(H, W)`` with cv2.INTER_AREA,
    at most ``max_frames``), cut into its Z = N - (M-1)(skip+1) segments and every segment permuted by its label.
    Elements: ``frames`` float32 (M, H, W, 3) in [0, 1], ``label`` int64 permutation label, ``video`` int64 index
    into ``items``, ``segment`` int64 first-frame index, ``video_label`` int64 the video's class.

    ``training=True``: videos in the order :func:`common.streaming.epoch_order` ``(seed, epoch)``, one random label
    per segment drawn from (seed, epoch, video, segment); ``mix_videos`` videos are decoded at a time and
    interleaved one segment each in turn (``Dataset.interleave``, deterministic), each video's segments in a
    random order drawn from (seed, epoch, video); a finished video's place goes to the next video of the epoch.
    So B consecutive segments come from min(B, mix_videos, videos not yet finished) different videos (with
    batch norm, a batch's statistics are not one video's). ``training=False``: videos and segments in order,
    ``test_permutations`` distinct labels per segment (each segment appears that many times) drawn from (seed,
    video, segment) only, so every epoch and every run scores the same permuted segments. A video shorter than one
    segment span is a DataError.
    """
    _check(m, skip)
    if not items:
        raise DataError("segment_dataset: no videos")
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch_size must be >= 1, not {batch_size}")
    if num_epochs is not None and num_epochs < 1:
        raise DataError(f"num_epochs must be >= 1 (or None for endless), not {num_epochs}")
    if mix_videos < 1:
        raise DataError(f"mix_videos must be >= 1, not {mix_videos}")
    if not 1 <= test_permutations <= math.factorial(m):
        raise DataError(f"test_permutations must be 1..{math.factorial(m)} for M={m}, not {test_permutations}")
    span = segment_span(m, skip)
    n_videos = len(items)
    paths = [str(i.path) for i in items]
    class_labels = tf.constant([int(i.label) for i in items], tf.int64)
    h, w = int(size[0]), int(size[1])
    k = 1 if training else int(test_permutations)
    perms = tf.constant(permutation_set(m))
    offsets = tf.constant(np.arange(m, dtype=np.int64) * (skip + 1))

    def decode(v):
        v = int(v)
        frames = read_video(paths[v], max_frames=max_frames, size=(h, w))
        if frames.shape[0] < span:
            raise DataError(f"{paths[v]} has {frames.shape[0]} frames, fewer than the {span} one segment of M={m} "
                            f"frames with skip {skip} spans; remove the video or lower M / the skip")
        return frames

    def decode_video(e, v):
        frames = tf.numpy_function(decode, [v], tf.uint8, stateful=False)
        return e, v, tf.ensure_shape(frames, [None, h, w, 3])

    def video_segments(e, v, frames):
        z = tf.shape(frames, out_type=tf.int64)[0] - (span - 1)
        if training:
            s = tf.random.experimental.stateless_fold_in(tf.constant([int(seed), LABEL_SALT], tf.int64), e)
        else:
            s = tf.constant([int(seed), TEST_LABEL_SALT], tf.int64)
        s = tf.random.experimental.stateless_fold_in(s, v)
        labels = tf.reshape(_labels(s, z, m, k), [-1])                       # (z * k,)
        starts = tf.repeat(tf.range(z, dtype=tf.int64), k)
        if training:                                # the video's segments in a seeded random order
            order = tf.argsort(tf.random.stateless_uniform(tf.reshape(z, [1]), tf.random.experimental
                                                           .stateless_fold_in(s, SEGMENT_SHUFFLE_SALT)))
            starts, labels = tf.gather(starts, order), tf.gather(labels, order)

        def segment(start, label):
            clip = tf.gather(frames, start + offsets)
            clip = tf.gather(clip, tf.gather(perms, label))
            return {"frames": clip, "label": label, "video": v, "segment": start,
                    "video_label": tf.gather(class_labels, v)}

        return tf.data.Dataset.from_tensor_slices((starts, labels)).map(segment)

    def epoch(e):
        order = epoch_order(n_videos, seed, e) if training else tf.range(n_videos, dtype=tf.int64)
        ds = tf.data.Dataset.from_tensor_slices(order).map(lambda v: (e, v))
        ds = ds.map(decode_video, num_parallel_calls=num_parallel_calls, deterministic=True)
        if training:                                # one segment of each of `mix_videos` videos in turn
            ds = ds.interleave(video_segments, cycle_length=min(int(mix_videos), n_videos), block_length=1)
        else:
            ds = ds.flat_map(video_segments)
        ds = ds.map(lambda d: {**d, "frames": tf.image.convert_image_dtype(d["frames"], tf.float32)})
        # Batched inside the epoch: a batch never mixes two epochs (count_segments() gives the epoch length).
        return ds.batch(batch_size) if batch_size else ds

    epochs = (tf.data.Dataset.range(start_epoch, start_epoch + num_epochs) if num_epochs is not None
              else tf.data.Dataset.counter(start_epoch))
    return epochs.flat_map(epoch).prefetch(tf.data.AUTOTUNE)
