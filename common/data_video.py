"""Video readers: decoding (OpenCV), UCF101, ImageNet VID (ILSVRC2015) and a user's own video folder.

Listing functions return :class:`VideoItem` (path, label, class_name) without decoding anything; decode with
:func:`read_video`, which returns uint8 RGB frames (T, H, W, 3) in [0, 255] from a video file or from a folder of
frame images (ImageNet VID snippets).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data_images import read_image
from common.errors import DataError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".webm")
FRAME_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp")
UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101.php"
VID_URL = "https://image-net.org/challenges/LSVRC/2015/ (ILSVRC2015_VID.tar.gz)"


# Segment arithmetic (no TensorFlow, so that configs can check M and skip before TensorFlow is imported).
MIN_M, MAX_M = 1, 8  # the paper uses M = 3..6; M = 1 streams single frames (frame-level baselines)


def check_segment(m: int, skip: int):
    if not MIN_M <= int(m) <= MAX_M:
        raise DataError(f"frames per segment M must be {MIN_M}..{MAX_M} (M! permutation classes), not {m}")
    if int(skip) < 0:
        raise DataError(f"frame skip must be >= 0, not {skip}")


def segment_span(m: int, skip: int) -> int:
    """Frames one segment covers from its first to its last frame: (M-1)(skip+1) + 1."""
    check_segment(m, skip)
    return (m - 1) * (skip + 1) + 1


def num_segments(n_frames: int, m: int, skip: int = 0) -> int:
    """Z = N - (M-1)(skip+1) segments of a video of N frames (0 if it is shorter than one span)."""
    return max(0, int(n_frames) - segment_span(m, skip) + 1)


@dataclass(frozen=True)
class VideoItem:
    """One video: a file (UCF101, video folder) or a folder of frames (ImageNet VID); ``label`` 0-based."""

    path: Path
    label: int
    class_name: str


def _resize(frame: np.ndarray, size):
    import cv2
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    return cv2.resize(frame, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)


def read_video(path, max_frames: int | None = None, step: int = 1, size: tuple[int, int] | None = None,
               start: int = 0) -> np.ndarray:
    """Decode frames ``start, start+step, ...`` (at most ``max_frames``) -> uint8 (T, H, W, 3) RGB.

    ``path`` is a video file (decoded with OpenCV/FFmpeg) or a folder of frame images (sorted by name).
    ``size=(H, W)`` resizes every frame (``cv2.INTER_AREA``). Raises DataError if the file cannot be opened,
    yields no frame, or ends well before the frame count in its header (truncated).
    """
    import cv2
    path = Path(path)
    if step < 1 or start < 0 or (max_frames is not None and max_frames < 1):
        raise DataError(f"read_video({path}): step must be >= 1, start >= 0 and max_frames >= 1")
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS
                       and not f.name.startswith("."))
        if not files:
            raise DataError(f"no frame images ({', '.join(FRAME_EXTENSIONS)}) in {path}")
        total = len(files)
        files = files[start::step][:max_frames]
        if not files:
            raise DataError(f"{path} has no frame at index {start} (it has {total} frames)")
        frames = [_resize(read_image(f, mode="RGB"), size) for f in files]
        if len({f.shape for f in frames}) > 1:
            raise DataError(f"frames in {path} differ in size; pass size=(H, W)")
        return np.stack(frames)
    if not path.is_file():
        raise DataError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"cannot open video {path} (truncated, corrupt, or a codec OpenCV's FFmpeg lacks)")
        header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        frames, index, reached_end = [], 0, False
        while max_frames is None or len(frames) < max_frames:
            want = index >= start and (index - start) % step == 0
            ok = cap.grab()
            if not ok:
                reached_end = True
                break
            if want:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise DataError(f"{path}: frame {index} cannot be decoded (corrupt or truncated file)")
                frames.append(_resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size))
            index += 1
    finally:
        cap.release()
    # A container header states the frame count; a file cut short decodes fewer. FFmpeg's count can be off by
    # a frame or so for some codecs, hence the tolerance (more than 1 frame and more than 2 % missing).
    if reached_end and header_count > 0 and header_count - index > max(1, 0.02 * header_count):
        raise DataError(f"{path} is truncated: its header announces {header_count} frames but only {index} "
                        f"could be decoded; replace the file")
    if not frames:
        raise DataError(f"{path} yielded no frames (decoded {index}, start={start}); empty or corrupt video")
    return np.stack(frames)


def video_frame_count(path) -> int:
    """Frames of a video without decoding it: the container header's count (OpenCV ``CAP_PROP_FRAME_COUNT``)
    for a file, the number of frame images for a folder. DataError if the video cannot be opened."""
    import cv2
    path = Path(path)
    if path.is_dir():
        return sum(1 for f in path.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS and not f.name.startswith("."))
    if not path.is_file():
        raise DataError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"cannot open video {path} (truncated, corrupt, or a codec OpenCV's FFmpeg lacks)")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


# ----------------------------------------------------------------------------------------------- UCF101
def find_ucf101(data_dir: Path) -> tuple[Path, Path]:
    """(videos root ``UCF-101``, lists folder ``ucfTrainTestlist``) under ``data_dir``, ``data_dir/UCF101``."""
    bases = [data_dir, data_dir / "UCF101", data_dir / "ucf101"]
    videos = next((b / "UCF-101" for b in bases if (b / "UCF-101").is_dir()), None)
    if videos is None and (data_dir / "ApplyEyeMakeup").is_dir():
        videos = data_dir
    lists = next((b / "ucfTrainTestlist" for b in bases if (b / "ucfTrainTestlist").is_dir()), None)
    if videos is None or lists is None:
        missing = " and ".join(n for n, v in (("UCF-101/<Class>/*.avi", videos),
                                                ("ucfTrainTestlist/", lists)) if v is None)
        raise DataError(f"UCF101: no {missing} in {' or '.join(map(str, bases[:2]))}; download UCF101.rar and "
                        f"UCF101TrainTestSplits-RecognitionTask.zip from {UCF101_URL} and extract both into "
                        f"{data_dir / 'UCF101'}")
    return videos, lists


def ucf101_classes(lists: Path) -> list[str]:
    p = lists / "classInd.txt"
    if not p.is_file():
        raise DataError(f"missing {p}; extract UCF101TrainTestSplits-RecognitionTask.zip from {UCF101_URL}")
    entries = {}
    for i, line in enumerate(l for l in p.read_text(errors="replace").splitlines() if l.strip()):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{p} line {i + 1} is not '<index> <ClassName>' (corrupt)")
        entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise DataError(f"{p} indices are not 1..{len(entries)} (truncated or corrupt)")
    return [entries[i] for i in range(1, len(entries) + 1)]


def ucf101_items(data_dir: Path, split: str = "train", fold: int = 1,
                 classes: list[str] | None = None) -> list[VideoItem]:
    """Videos of the official split ``fold`` (1..3): ``trainlist0{fold}.txt`` / ``testlist0{fold}.txt``.

    Labels are the 0-based ``classInd.txt`` indices (kept when ``classes`` selects a subset by name).
    """
    if split not in ("train", "test"):
        raise DataError(f"ucf101 has splits train and test, not {split!r}")
    if fold not in (1, 2, 3):
        raise DataError(f"UCF101 fold must be 1, 2 or 3, not {fold}")
    videos, lists = find_ucf101(data_dir)
    names = ucf101_classes(lists)
    index = {n.lower(): i for i, n in enumerate(names)}
    if classes is not None:
        unknown = [c for c in classes if c.lower() not in index]
        if unknown:
            raise DataError(f"unknown UCF101 classes {unknown[:5]}; see {lists / 'classInd.txt'}")
        keep = {c.lower() for c in classes}
    lst = lists / f"{split}list0{fold}.txt"
    if not lst.is_file():
        raise DataError(f"missing {lst}; extract UCF101TrainTestSplits-RecognitionTask.zip from {UCF101_URL}")
    items, missing = [], []
    dir_cache: dict[str, dict[str, Path]] = {}
    for lineno, line in enumerate(lst.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        rel = line.split()[0]
        cls = rel.split("/")[0]
        if cls.lower() not in index:
            raise DataError(f"{lst} line {lineno}: class {cls!r} is not in classInd.txt (corrupt list)")
        if classes is not None and cls.lower() not in keep:
            continue
        path = videos / rel
        if not path.is_file():
            # The lists and the archive differ in case for a few names (e.g. HandStandPushups).
            if cls.lower() not in dir_cache:
                d = next((p for p in videos.iterdir() if p.name.lower() == cls.lower()), None)
                dir_cache[cls.lower()] = {f.name.lower(): f for f in d.iterdir()} if d else {}
            path = dir_cache[cls.lower()].get(rel.split("/")[-1].lower(), path)
        if not path.is_file():
            missing.append(rel)
            continue
        i = index[cls.lower()]
        items.append(VideoItem(path, i, names[i]))
    if missing:
        raise DataError(f"{len(missing)} videos listed in {lst} are missing under {videos} (first: {missing[0]});"
                        f" the UCF-101 extraction is incomplete")
    if not items:
        raise DataError(f"{lst} lists no videos{' of the selected classes' if classes else ''} (truncated?)")
    return items


# ------------------------------------------------------------------------------------------ ImageNet VID
def find_vid(data_dir: Path) -> Path:
    """The ILSVRC2015 root (holding ``Data/VID`` and ``Annotations/VID``)."""
    cands = [data_dir, data_dir / "ILSVRC2015", data_dir / "ILSVRC"]
    for c in cands:
        if (c / "Data" / "VID").is_dir():
            return c
    raise DataError(f"ImageNet VID: no Data/VID/ in {' or '.join(map(str, cands))}; download {VID_URL} and "
                    f"extract it into {data_dir}")


def vid_class_names(root: Path) -> dict[str, str]:
    """wnid -> name from the devkit's ``map_vid.txt`` ("n02691156 1 airplane"), empty if the devkit is absent."""
    for p in (root / "devkit" / "data" / "map_vid.txt", root / "map_vid.txt"):
        if p.is_file():
            out = {}
            for line in p.read_text(errors="replace").splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    out[parts[0]] = " ".join(parts[2:])
            return out
    return {}


def _snippet_class(ann_dir: Path, max_annotations: int) -> str | None:
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        return None
    if max_annotations and len(files) > max_annotations:
        idx = np.linspace(0, len(files) - 1, max_annotations).round().astype(int)
        files = [files[i] for i in sorted(set(idx))]
    votes: Counter = Counter()
    for f in files:
        try:
            tree = ET.parse(f)
        except ET.ParseError as e:
            raise DataError(f"{f} is truncated or corrupt XML ({e}); re-extract the VID annotations") from None
        for obj in tree.getroot().iter("object"):
            name = obj.findtext("name")
            if name:
                votes[name.strip()] += 1
    if not votes:
        return None
    # Majority object class over the sampled frames; ties broken by the smaller wnid (deterministic).
    best = max(votes.values())
    return min(w for w, c in votes.items() if c == best)


def imagenet_vid_items(data_dir: Path, split: str = "train", classes: list[str] | None = None,
                       max_annotations: int = 16) -> list[VideoItem]:
    """Snippets (frame folders) of ``Data/VID/<split>`` with the snippet's class: the most frequent object
    ``<name>`` (wnid) over up to ``max_annotations`` evenly spaced annotation files (0 = all) of
    ``Annotations/VID/<split>/<same path>``. Snippets without any annotated object are skipped (logged).
    Labels index the sorted wnids found (or the devkit ``map_vid.txt`` order); ``classes`` filters by wnid or
    name. The test split has no public annotations and is refused.
    """
    if split not in ("train", "val"):
        raise DataError(f"imagenet_vid has labelled splits train and val (test has no public annotations), "
                        f"not {split!r}")
    root = find_vid(data_dir)
    data = root / "Data" / "VID" / split
    ann = root / "Annotations" / "VID" / split
    if not data.is_dir() or not ann.is_dir():
        raise DataError(f"ImageNet VID {split}: need both {data} and {ann}; extract {VID_URL} into {data_dir}")
    snippets = sorted({f.parent for f in data.rglob("*") if f.suffix.lower() in FRAME_EXTENSIONS})
    if not snippets:
        raise DataError(f"no frame folders (<snippet>/000000.JPEG) under {data}")
    names = vid_class_names(root)
    found, skipped = [], 0
    for s in snippets:
        wnid = _snippet_class(ann / s.relative_to(data), max_annotations)
        if wnid is None:
            skipped += 1
        else:
            found.append((s, wnid))
    if skipped:
        log.info("imagenet_vid %s: %d snippets without annotated objects skipped", split, skipped)
    if not found:
        raise DataError(f"no snippet under {data} has an annotated object in {ann}")
    order = list(names) if names else sorted({w for _, w in found})
    order += sorted({w for _, w in found} - set(order))
    label = {w: i for i, w in enumerate(order)}
    if classes is not None:
        wanted = {c for c in classes} | {w for w, n in names.items() if n in set(classes)}
        found = [(s, w) for s, w in found if w in wanted]
        if not found:
            raise DataError(f"no ImageNet VID {split} snippet of classes {list(classes)[:5]}")
    return [VideoItem(s, label[w], names.get(w, w)) for s, w in found]


# ------------------------------------------------------------------------------------------- video folder
def video_folder_items(root: Path, split: str = "all") -> list[VideoItem]:
    """A user's own videos: ``root/<class>/*.avi|mp4|...`` (split "all") or ``root/<split>/<class>/*``.

    Classes are the sub-folder names in sorted order (with split folders: the union over all of them).
    """
    from common.data_images import list_split_classes, split_folder

    base = split_folder(root, split, kind="video", pattern="avi|mp4", hint=False)
    classes, local, files = list_split_classes(root, base, VIDEO_EXTENSIONS, kind="video")
    return [VideoItem(f, classes.index(local[i]), local[i]) for i, fs in enumerate(files) for f in fs]
