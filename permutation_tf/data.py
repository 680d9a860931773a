"""Videos and segment streams for the video experiments (Section IV-A/B, TABLES IV-VI).

Datasets (``--dataset``):

* ``ucf101``: the 20-class subset (``--class_list``, default ``permutation_tf/data/ucf101_20.txt``), 50 training
  videos per class from trainlist01 and 10 test videos per class from testlist01 (Sec. IV-A), each picked
  evenly spaced along the official list (so they span its groups) -- the paper does not say which.
* ``imagenet_vid``: the 20-class subset (``permutation_tf/data/imagenet_vid_20.txt``, wnids), 100 training
  snippets per class from ``train`` and 15 test snippets from ``val`` (the test split has no public labels).
* ``video_folder``: ``root/<class>/*`` (seeded 2:1 train/test split per class) or ``root/{train,test}/<class>/``.
* ``moving_fashion``: the Moving Fashion-MNIST set of :mod:`permutation_tf.make_moving_fashion` in
  ``<data_dir>/moving_fashion`` (written there with its defaults when absent), read as a ``video_folder``:
  trajectories independent of the class (the class is the item's appearance).
* ``fashion_motion``: the same maker's ``motion="class"`` set in ``<data_dir>/fashion_motion`` (written when
  absent): the class is the item's motion (heading, speed, spin), half of the clips with an item of a random
  category (issue 21: a stand-in whose classes differ in motion, as UCF101's actions do).

``train_videos_per_class`` / ``test_videos_per_class`` cap the videos per class (evenly spaced picks) -- the
paper's numbers for UCF101 / VID, fewer in the quick preset. The one-vs-all protocol is
:func:`common.video_clips.one_class_videos`; segments stream through :func:`common.video_clips.segment_dataset`.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from common.data_video import VideoItem
from common.errors import DataError
from common.paths import resolve_data_dir
from common.video_clips import count_segments, one_class_videos, segment_dataset, segment_span, split_videos

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data"
CLASS_LISTS = {"ucf101": DATA / "ucf101_20.txt", "imagenet_vid": DATA / "imagenet_vid_20.txt"}
PER_CLASS = {"ucf101": (50, 10), "imagenet_vid": (100, 15)}   # Sec. IV-A: train / test videos per class
DATASETS = ("ucf101", "imagenet_vid", "video_folder", "moving_fashion", "fashion_motion")
# make() arguments; fashion_motion holds UCF101's per-class counts of the paper's subset (50 train / 10 test)
GENERATED = {"moving_fashion": dict(motion="random"),
             "fashion_motion": dict(motion="class", train_per_class=50, test_per_class=10)}


def read_class_list(path) -> list[str]:
    """Class names (or wnids) of a class-list file: first word of each line, '#' starts a comment."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class list {path} does not exist (one class name per line)")
    names = [line.split("#")[0].split()[0] for line in path.read_text().splitlines() if line.split("#")[0].strip()]
    if len(names) < 2:
        raise DataError(f"class list {path} names {len(names)} classes; one-vs-all needs at least 2")
    return names


def evenly(items: list, n: int | None) -> list:
    """``n`` items evenly spaced along ``items`` (all of them when n is None or >= len)."""
    if n is None or n >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def cap_per_class(items: list[VideoItem], n: int | None) -> list[VideoItem]:
    out = []
    for label in sorted({i.label for i in items}):
        out += evenly([i for i in items if i.label == label], n)
    return out


def relabel(items: list[VideoItem], classes: list[str]) -> list[VideoItem]:
    """Labels 0..C-1 in class-list order (the subset's own indices, used by --normal_class)."""
    order = {c.lower(): k for k, c in enumerate(classes)}

    def key(i: VideoItem) -> int:
        for name in (i.class_name.lower(), Path(i.path).parent.name.lower()):
            if name in order:
                return order[name]
        raise DataError(f"{i.path}: class {i.class_name!r} is not in the class list")
    return [VideoItem(i.path, key(i), i.class_name) for i in items]


def load_split(dataset: str, data_dir=None, class_list: str | None = None, seed: int = 0):
    """(train items, test items) of ``dataset`` before the per-class caps."""
    from common import datasets

    if dataset not in DATASETS:
        raise DataError(f"unknown video dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset in ("ucf101", "imagenet_vid"):
        classes = read_class_list(class_list or CLASS_LISTS[dataset])
        if dataset == "ucf101":
            train = datasets.ucf101_items(data_dir, "train", 1, classes)
            test = datasets.ucf101_items(data_dir, "test", 1, classes)
            return relabel(train, classes), relabel(test, classes)
        train = datasets.imagenet_vid_items(data_dir, "train", classes)
        test = datasets.imagenet_vid_items(data_dir, "val", classes)
        return _relabel_vid(train, classes), _relabel_vid(test, classes)
    root = Path(resolve_data_dir(data_dir))
    if dataset in GENERATED:
        from permutation_tf.make_moving_fashion import make

        if root.name != dataset:
            root = root / dataset
        if not (root / "README.txt").is_file():
            log.info("writing the %s set to %s", dataset, root)
            make(root, data_dir=data_dir, **GENERATED[dataset])
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, test = datasets.video_folder_items(root, "train"), datasets.video_folder_items(root, "test")
    else:
        train, test = split_videos(datasets.video_folder_items(root, "all"), 1 / 3, seed)
    if class_list:
        classes = read_class_list(class_list)
        keep = {c.lower() for c in classes}
        train = relabel([i for i in train if i.class_name.lower() in keep], classes)
        test = relabel([i for i in test if i.class_name.lower() in keep], classes)
    return train, test


def _relabel_vid(items: list[VideoItem], wnids: list[str]) -> list[VideoItem]:
    """VID items carry the class name (devkit) or the wnid; map both to the class-list order by wnid."""
    from common.data_video import vid_class_names

    names: dict[str, str] = {}
    for i in items:  # the devkit's map, if present, sits above Data/VID
        root = next((p for p in Path(i.path).parents if (p / "Data" / "VID").is_dir()), None)
        names = vid_class_names(root) if root else {}
        break
    by_name = {n.lower(): w for w, n in names.items()}
    order = {w.lower(): k for k, w in enumerate(wnids)}
    out = []
    for i in items:
        w = by_name.get(i.class_name.lower(), i.class_name).lower()
        if w not in order:
            raise DataError(f"{i.path}: class {i.class_name!r} is not in the class list")
        out.append(VideoItem(i.path, order[w], i.class_name))
    return out


def one_class(cfg):
    """The one-vs-all videos of ``cfg`` (:class:`common.video_clips.OneClassVideos`) with the per-class caps."""
    train, test = load_split(cfg.dataset, cfg.data_dir, cfg.class_list, cfg.seed)
    n_train, n_test = PER_CLASS.get(cfg.dataset, (None, None))
    train = cap_per_class(train, cfg.train_videos_per_class or n_train)
    test = cap_per_class(test, cfg.test_videos_per_class or n_test)
    return one_class_videos(train, test, cfg.normal_class)


def train_stream(cfg, task, items, start_epoch: int = 0):
    """Endless training stream of batches from epoch ``start_epoch`` on, and the steps of one epoch (one pass
    over the normal segments, or ``cfg.steps_per_epoch``). Epoch e's segments and labels depend on (seed, e)
    only (``common.video_clips.segment_dataset``), so a resumed run sees what an uninterrupted one sees (exactly
    so when an epoch is one whole pass)."""
    n = count_segments(items, task.m, cfg.skip, cfg.max_frames)
    if n == 0:
        raise DataError(f"the {len(items)} training videos hold no segment of M={task.m} frames with skip "
                        f"{cfg.skip}; lower M / the skip or use longer videos")
    steps = cfg.steps_per_epoch or math.ceil(n / cfg.batch_size)
    ds = segment_dataset(items, m=task.m, skip=cfg.skip, size=(cfg.frame_size, cfg.frame_size), seed=cfg.seed,
                         training=True, batch_size=cfg.batch_size, start_epoch=start_epoch, num_epochs=None,
                         max_frames=cfg.max_frames, mix_videos=cfg.mix_videos)
    return ds, steps, n


def check_test_videos(cfg, task, items) -> None:
    """DataError unless every test video holds at least one segment of ``task.m`` frames with ``cfg.skip``
    (within ``cfg.test_max_frames``), from the container headers' frame counts, before any decoding: a run calls
    it before training, so a short test video never costs a training (or leaves a checkpoint behind)."""
    short = [i.path for i in items if count_segments([i], task.m, cfg.skip, cfg.test_max_frames) == 0]
    if short:
        span = segment_span(task.m, cfg.skip)
        cap = "" if cfg.test_max_frames is None else f", reading at most {cfg.test_max_frames}"
        raise DataError(f"{len(short)} test video(s) hold no segment of M={task.m} frames with skip {cfg.skip} "
                        f"({span} frames{cap}), e.g. {short[0]}; lower M / the skip, raise --test_max_frames or use "
                        f"longer videos")


def test_stream(cfg, task, items):
    """The test segments in order, ``cfg.test_permutations`` deterministic labels each (Sec. III-D). A test video
    shorter than one segment is an error here, before any decoding (:func:`check_test_videos`)."""
    check_test_videos(cfg, task, items)
    return segment_dataset(items, m=task.m, skip=cfg.skip, size=(cfg.frame_size, cfg.frame_size), seed=cfg.seed,
                           training=False, batch_size=cfg.eval_batch_size, num_epochs=1,
                           test_permutations=cfg.test_permutations, max_frames=cfg.test_max_frames)
