"""The frame-permutation model (Section III, Fig. 3) and the video baselines of TABLE IV on the same backbone.

A :class:`SegmentTask` says what one self-supervised task does with a segment of ``m`` frames (as streamed by
:func:`common.video_clips.segment_dataset`): which frame orders (``orders``, (V, S) frame indices) or rotations
it shows the S-stream network, and the class of each (``targets``). Every task uses the same CaffeNet Base-CNN
(shared by its S streams) and a Top-CNN over its classes; its anomaly score is the cross-entropy of a segment
under its task label (Eq. 8), min-max normalised over the test segments (Eq. 9):

* ``permutation`` (ours, Sec. III): S = M streams, M! classes, the segment's frames permuted by its label
  y_i (Eq. 1); training on the pipeline's random label of each segment (``train_orders="sampled"``, the paper)
  or on all M! orders of each segment at once (``"all"``, beyond the paper: one Base-CNN pass per frame and
  :meth:`TopCNN.logits_for_orders`; the mean over the orders is Eq. 8's expectation over the uniform label).
* ``rotnet`` [26] on frames (Sec. IV-D: "we treat the video frames ... as independent images"): M = 1, each frame
  rotated by 0/90/180/270 degrees, 4 classes, all four rotations of every frame in training and scoring.
* ``shuffle_learn`` [43] (order verification): from a 5-frame segment (a, b, c, d, e) the tuple (b, c, d) is
  "in order" (class 1), (b, a, d) and (b, e, d) are "shuffled" (class 0), as in Misra et al.; 3 streams.
* ``aot`` [44] (arrow of time): the M frames forward (class 0) or reversed (class 1); raw frames instead of
  the optical flow of Wei et al. (no flow is used anywhere here).
* ``sorting`` [45] (order prediction): 4 frames shuffled, 12 classes (a permutation and its reverse are one
  class, as in Lee et al.); the concatenation Top-CNN instead of Lee et al.'s pairwise feature fusion.

Scores at test time (:meth:`FramePermutationModel.segment_losses`), from ONE pass of the Base-CNN over the
segment's frames: ``sampled`` = the cross-entropy under the segment's own (deterministic, seeded) label
(the paper's rule; for tasks without a random label, the variant ``label mod V``), ``all`` = the mean
cross-entropy over every variant of the task (for ``permutation``: all M! orders, the expectation of the
sampled score over the random label; for rotnet: the four rotations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from common.multiplayer import MultiPlayerModel, Player
from common.video_clips import permutation_set
from permutation_tf import losses
from permutation_tf.config import METHODS, TRAIN_ORDERS
from permutation_tf.networks import TopCNN, build_base_cnn, set_input_mean



@dataclass(frozen=True)
class SegmentTask:
    name: str
    m: int                  # frames per streamed segment
    streams: int            # S: Base-CNN streams whose features are concatenated (Eq. 4)
    n_classes: int
    orders: np.ndarray      # (V, S) frame indices into the ordered segment, one row per variant
    targets: np.ndarray     # (V,) class of each variant
    rotation: bool = False  # variants are rotations by 90 * v degrees of a single frame (RotNet)
    sampled: bool = False   # training uses the pipeline's random label (variant = label) instead of all variants

    @property
    def n_variants(self) -> int:
        return int(self.orders.shape[0])

    @property
    def chance_loss(self) -> float:
        """The cross-entropy of the best input-independent prediction over the task's variants: the entropy of
        their class distribution (ln M! for the permutation task, ln 4 RotNet, ln 2 AoT, ln 12 sorting)."""
        p = np.bincount(self.targets, minlength=self.n_classes) / self.n_variants
        return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def _sorting_classes() -> np.ndarray:
    perms = [tuple(p) for p in permutation_set(4)]
    canon = sorted({min(p, p[::-1]) for p in perms})
    return np.array([canon.index(min(p, p[::-1])) for p in perms], np.int32)


def make_task(method: str, m: int = 5) -> SegmentTask:
    """The :class:`SegmentTask` of ``method`` (``m`` is used by permutation and aot; the others fix it)."""
    if method == "permutation":
        return SegmentTask("permutation", m, m, math.factorial(m), permutation_set(m).astype(np.int32),
                           np.arange(math.factorial(m), dtype=np.int32), sampled=True)
    if method == "rotnet":
        return SegmentTask("rotnet", 1, 1, 4, np.zeros((4, 1), np.int32), np.arange(4, dtype=np.int32),
                           rotation=True)
    if method == "shuffle_learn":
        return SegmentTask("shuffle_learn", 5, 3, 2, np.array([[1, 2, 3], [1, 0, 3], [1, 4, 3]], np.int32),
                           np.array([1, 0, 0], np.int32))
    if method == "aot":
        return SegmentTask("aot", m, m, 2, np.array([list(range(m)), list(range(m))[::-1]], np.int32),
                           np.array([0, 1], np.int32))
    if method == "sorting":
        return SegmentTask("sorting", 4, 4, 12, permutation_set(4).astype(np.int32), _sorting_classes(),
                           sampled=True)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


PLAYER = "network"


class FramePermutationModel(MultiPlayerModel):
    """M-stream siamese CaffeNet + Top-CNN for one :class:`SegmentTask` (``permutation`` = the paper's method).

    Inputs are segments ``(batch, frames, H, W, 3)`` in [0, 1]. ``call`` gives the logits of the S frames as
    given (Eq. 3-5); ``train_step`` minimises Eq. 6-8 (one player of :class:`common.multiplayer.MultiPlayerModel`,
    SGD set by ``compile``); ``segment_losses`` gives the
    per-segment scores; ``serve`` is the export signature."""

    def __init__(self, task: SegmentTask, frame_size=(225, 225), conv1_stride: int = 2,
                 average_over_classes: bool = False, input_norm: str = "mean_image", init: str = "caffe",
                 norm: str = "none", dropout: str = "fc6_fc7_fc8", weight_decay: float = 0.0,
                 train_orders: str = "sampled", **kwargs):
        super().__init__(metric_names=("loss", "accuracy"), **kwargs)
        self.task = task
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.average_over_classes = bool(average_over_classes)
        self.input_norm = input_norm
        if train_orders not in TRAIN_ORDERS:
            raise ValueError(f"train_orders must be one of {TRAIN_ORDERS}, not {train_orders!r}")
        self.train_orders = train_orders
        self.base = build_base_cnn(self.frame_size, conv1_stride, input_norm=input_norm, init=init, norm=norm,
                                   dropout=dropout, weight_decay=weight_decay)
        self.top = TopCNN(task.streams, task.n_classes, init=init, norm=norm, dropout=dropout,
                          weight_decay=weight_decay, name="top_cnn")
        self.top.build()
        inverse = np.argsort(permutation_set(task.m), axis=1).astype(np.int32)
        self._inverse = tf.constant(inverse)
        self._orders = tf.constant(task.orders)
        self._targets = tf.constant(task.targets)
        # Min / max of the "all" raw score over the test segments (Eq. 9), used by serve().
        self.score_min = keras.Variable(0.0, trainable=False, dtype="float32", name="score_min")
        self.score_max = keras.Variable(1.0, trainable=False, dtype="float32", name="score_max")

    @property
    def loss_tracker(self):
        """The epoch mean of the training loss (``loss`` of the logs)."""
        return self.metrics[0]

    @property
    def acc_tracker(self):
        """The epoch accuracy of the task's classifier (``accuracy`` of the logs)."""
        return self.metrics[1]

    def set_input_mean(self, mean) -> None:
        """The training frames' mean (H, W, 3) in 0..255 that the Base-CNN subtracts (Caffe's mean file;
        :func:`permutation_tf.networks.frame_mean`); a no-op for ``input_norm="pm1"``."""
        set_input_mean(self.base, mean)

    # ------------------------------------------------------------------------------------------ forward
    def features(self, frames, training=False):
        """Eq. 3: r_k = B(f_k; theta) for every frame, through the ONE shared Base-CNN -> (B, F, 4096)."""
        shape = tf.shape(frames)
        x = tf.reshape(frames, tf.concat([[-1], shape[2:]], 0))
        r = self.base(x, training=training)
        return tf.reshape(r, tf.stack([shape[0], shape[1], r.shape[-1]]))

    def concat_logits(self, features, training=False):
        """Eq. 4-5: T(O(r_1, ..., r_S)) -> (B, n_classes) logits."""
        x = tf.reshape(features, [-1, self.task.streams * features.shape[-1]])
        return self.top(x, training=training)

    def call(self, frames, training=False):
        """Logits of the S frames as given: (B, S, H, W, 3) -> (B, n_classes)."""
        return self.concat_logits(self.features(frames, training), training)

    def ordered(self, frames, label):
        """Undo Eq. 1: the segment in temporal order from its permuted frames and label, g^-1(s*, y)."""
        return tf.gather(frames, tf.gather(self._inverse, label), batch_dims=1)

    def _rotations(self, frames):
        x = frames[:, 0]
        return tf.stack([tf.image.rot90(x, k) for k in range(4)], axis=1)   # (B, 4, H, W, 3)

    def train_logits(self, frames, label, training=True):
        """(logits, targets) of the task's training examples for a batch of streamed segments."""
        t = self.task
        if t.rotation:                              # all four rotations of every frame
            rot = self._rotations(frames)
            logits = self.concat_logits(self.features(tf.reshape(rot, tf.concat([[-1, 1], tf.shape(rot)[2:]], 0)),
                                                      training), training)
            return logits, tf.tile(self._targets, [tf.shape(frames)[0]])
        if t.sampled and self.train_orders == "sampled":   # the segment as permuted by its label y_i (Eq. 1)
            return self.call(frames, training), tf.gather(self._targets, label)
        if t.sampled:                               # all M! orders from one Base-CNN pass per frame
            feats = self.features(self.ordered(frames, label), training)                  # (B, m, D)
            logits = self.top.logits_for_orders(feats, t.orders, training=training)       # (B, V, C)
            return (tf.reshape(logits, [-1, t.n_classes]),
                    tf.tile(self._targets, [tf.shape(frames)[0]]))
        feats = self.features(self.ordered(frames, label), training)                      # (B, m, D)
        chosen = tf.gather(feats, self._orders, axis=1)               # (B, V, S, D)
        logits = self.concat_logits(tf.reshape(chosen, [-1, t.streams, feats.shape[-1]]), training)
        return logits, tf.tile(self._targets, [tf.shape(frames)[0]])

    # -------------------------------------------------------------------------------------------- train
    def compile(self, optimizer, **kwargs):
        """One player, the whole network (Base-CNN + Top-CNN, trained jointly: Eq. 6-7) with ``optimizer`` (SGD,
        :func:`make_optimizer`); ``train_step`` is :class:`common.multiplayer.MultiPlayerModel`'s (loss scaling,
        per-replica loss weighting, metrics all-reduced across replicas). ``jit_compile`` ... pass through."""
        self.compile_players([Player(PLAYER, [self.base, self.top], optimizer, lambda out: out["loss"])], **kwargs)
        self.optimizer = self.player(PLAYER).optimizer   # a named attribute: checkpoints hold its state

    def compute_outputs(self, data, training: bool = False) -> dict:
        """Eq. 6-8 on a (local) batch of streamed segments: ``loss`` (mean cross-entropy, float32) and
        ``accuracy`` (of the task's classifier on its training examples)."""
        logits, targets = self.train_logits(data["frames"], data["label"], training=training)
        logits = tf.cast(logits, tf.float32)
        loss = losses.mean_loss(targets, logits, self.average_over_classes)
        hit = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(targets, tf.int32))
        return {"loss": loss, "accuracy": tf.reduce_mean(tf.cast(hit, tf.float32))}

    # -------------------------------------------------------------------------------------------- score
    def variant_logits(self, ordered):
        """(B, V, n_classes) logits of every variant of segments given in temporal order (inference)."""
        if self.task.rotation:
            rot = self._rotations(ordered)
            feats = self.features(tf.reshape(rot, tf.concat([[-1, 1], tf.shape(rot)[2:]], 0)))
            logits = self.concat_logits(feats)
            return tf.reshape(logits, [-1, 4, self.task.n_classes])
        return self.top.logits_for_orders(self.features(ordered), self.task.orders)

    def _variant_losses(self, logits):
        b = tf.shape(logits)[0]
        targets = tf.tile(self._targets[None], [b, 1])
        ce = losses.cross_entropy(tf.reshape(targets, [-1]), tf.reshape(logits, [-1, self.task.n_classes]),
                                  self.average_over_classes)
        return tf.reshape(ce, [b, self.task.n_variants])

    def segment_losses(self, frames, label):
        """Per-segment raw scores of streamed segments (permuted by ``label``): ``sampled`` (B,) = Eq. 8 under
        the segment's label, ``all`` (B,) = the mean of Eq. 8 over every variant of the task."""
        ce = self._variant_losses(self.variant_logits(self.ordered(frames, label)))
        pick = tf.math.floormod(tf.cast(label, tf.int32), self.task.n_variants)
        return {"sampled": tf.gather(ce, pick, batch_dims=1), "all": tf.reduce_mean(ce, axis=1)}

    def set_score_range(self, raw_all) -> None:
        """Store min / max of the ``all`` raw scores of the test segments for :meth:`serve` (Eq. 9)."""
        self.score_min.assign(float(np.min(raw_all)))
        self.score_max.assign(float(np.max(raw_all)))

    def serve(self, frames):
        """``serving_default``: segments (batch, m, H, W, 3) in [0, 1], frames in temporal order ->
        ``anomaly_score`` (Eq. 9 with the test set's min/max), ``anomaly_score_raw`` (mean Eq. 8 over all
        variants) and ``permutation_probabilities`` (softmax of T for the frames as given: p(Y | x), Eq. 5)."""
        logits = self.variant_logits(frames)
        raw = tf.reduce_mean(self._variant_losses(logits), axis=1)
        span = tf.maximum(self.score_max - self.score_min, 1e-12)
        return {"anomaly_score": (raw - self.score_min) / span, "anomaly_score_raw": raw,
                "permutation_probabilities": tf.nn.softmax(tf.cast(logits[:, 0], tf.float32), axis=-1)}


def make_optimizer(lr: float = 1e-3, momentum: float = 0.9):
    """Sec. IV-D: SGD, momentum 0.9, learning rate 1e-3."""
    return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)


def build_model(task: SegmentTask, frame_size, conv1_stride: int = 2, average_over_classes: bool = False,
                lr: float = 1e-3, momentum: float = 0.9, jit_compile="auto", input_norm: str = "mean_image",
                init: str = "caffe", input_mean=None, norm: str = "none", dropout: str = "fc6_fc7_fc8",
                weight_decay: float = 0.0, train_orders: str = "sampled") -> FramePermutationModel:
    """The compiled model; ``input_mean`` (H, W, 3, 0..255) is stored for the mean-subtracting inputs."""
    model = FramePermutationModel(task, frame_size, conv1_stride, average_over_classes, input_norm, init, norm,
                                  dropout, weight_decay, train_orders)
    model(np.zeros((1, task.streams, int(frame_size[0]), int(frame_size[1]), 3), np.float32))   # build
    if input_mean is not None:
        model.set_input_mean(input_mean)
    model.compile(make_optimizer(lr, momentum), jit_compile=jit_compile)
    return model
