"""UCSD Anomaly Detection Dataset (Ped1 / Ped2) reader, from the official folder tree of
http://www.svcl.ucsd.edu/projects/anomaly/dataset.htm (``UCSD_Anomaly_Dataset.v1p2``):

    UCSDped2/Train/Train001/001.tif ...          normal training videos (8-bit gray frames)
    UCSDped2/Test/Test001/001.tif ...            test videos
    UCSDped2/Test/Test001_gt/001.bmp ...         pixel-level anomaly masks (all 12 Ped2 test videos, 10 of Ped1's)
    UCSDped2/Test/UCSDped2.m                     frame-level ground truth, one line per test video in order:
                                                 ``TestVideoFile{end+1}.gt_frame = [61:180];`` (1-based, inclusive,
                                                 several ranges separated by commas possible)

Frame labels come from the .m file when it is present; otherwise from the pixel masks (a frame is anomalous iff
any mask pixel is set), recorded in ``UCSDData.gt_source`` and per video in ``Video.label_source``.
Ped2 frames are 240x360, Ped1 158x238 (not enforced, so that smaller trees in the same layout can be read).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.data_images import read_image
from common.errors import DataError

UCSD_URL = "http://www.svcl.ucsd.edu/projects/anomaly/UCSD_Anomaly_Dataset.tar.gz"
UCSD_ROOT_NAMES = ("UCSD_Anomaly_Dataset.v1p2", "UCSD_Anomaly_Dataset", "ucsd")
_GT_LINE = re.compile(r"^\s*TestVideoFile\s*\{[^}]*\}\s*\.\s*gt_frame\s*=\s*\[([^\]]*)\]\s*;?")
_VIDEO_DIR = re.compile(r"^(Train|Test)(\d+)$")


@dataclass
class Video:
    """One UCSD clip. ``frames``: uint8 (T, H, W) gray in [0, 255]; ``frame_labels``: int8 (T,) 1 = anomalous
    (None for training videos or test videos without ground truth); ``pixel_masks``: bool (T, H, W) or None."""

    name: str
    frames: np.ndarray
    frame_labels: np.ndarray | None = None
    pixel_masks: np.ndarray | None = None
    path: str = ""
    label_source: str = ""


@dataclass
class UCSDData:
    subset: str
    root: str
    train: list[Video] = field(default_factory=list)
    test: list[Video] = field(default_factory=list)
    gt_source: str = ""


def find_ucsd_root(data_dir: Path, subset: str) -> Path:
    """Accept ``data_dir`` = the UCSDpedN folder, the UCSD_Anomaly_Dataset folder, or a parent of it."""
    folder = "UCSDped1" if subset == "ped1" else "UCSDped2"
    other = "UCSDped2" if subset == "ped1" else "UCSDped1"
    if data_dir.name.lower() == other.lower():
        raise DataError(f"--data_dir {data_dir} is the {other} folder but subset {subset} ({folder}) was asked")
    cands = [data_dir, data_dir / folder] + [data_dir / r / folder for r in UCSD_ROOT_NAMES]
    for c in cands:
        if (c / "Train").is_dir() and (c / "Test").is_dir():
            return c
    raise DataError(f"no UCSD {folder} tree (Train/TrainNNN/*.tif, Test/TestNNN/*.tif) in "
                    f"{' or '.join(str(c) for c in cands[:3])}; download {UCSD_URL}, extract it and pass "
                    f"--data_dir=<...>/UCSD_Anomaly_Dataset.v1p2/{folder}")


def _video_dirs(parent: Path, kind: str) -> list[Path]:
    dirs = [d for d in parent.iterdir() if d.is_dir() and _VIDEO_DIR.match(d.name)
            and _VIDEO_DIR.match(d.name).group(1) == kind]
    return sorted(dirs, key=lambda d: int(_VIDEO_DIR.match(d.name).group(2)))


def _frame_files(d: Path, exts: tuple[str, ...]) -> list[Path]:
    # ``._*`` files are macOS resource forks shipped inside some copies of the archive.
    return sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."))


def find_gt_m(root: Path, subset: str) -> Path | None:
    """``Test/UCSDpedN.m`` (or next to Train/Test), else any .m file there with ``gt_frame`` lines, else None."""
    m_files = [p for d in (root / "Test", root) for p in sorted(d.glob("*.m")) if not p.name.startswith(".")]
    exact = [p for p in m_files if p.stem.lower() == f"ucsd{subset}"]
    if exact:
        return exact[0]
    return next((p for p in m_files if "gt_frame" in p.read_text(errors="replace")), None)


def parse_gt_m(path: Path) -> list[np.ndarray]:
    """Parse ``UCSDped{1,2}.m``: one array of 1-based anomalous frame numbers per ``gt_frame`` line, in order."""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("%") or "gt_frame" not in line:
            continue
        m = _GT_LINE.match(line)
        if not m:
            raise DataError(f"{path} line {lineno} is not of the form 'TestVideoFile{{end+1}}.gt_frame = [a:b];'"
                            f" (corrupt or truncated)")
        frames: list[int] = []
        for part in re.split(r"[,\s]+", m.group(1).strip()):
            if not part:
                continue
            bounds = part.split(":")
            try:
                if len(bounds) == 1:
                    frames.append(int(bounds[0]))
                elif len(bounds) == 2:
                    frames.extend(range(int(bounds[0]), int(bounds[1]) + 1))
                else:
                    raise ValueError(part)
            except ValueError:
                raise DataError(f"{path} line {lineno}: cannot read the frame range {part!r}") from None
        out.append(np.array(frames, np.int64))
    if not out:
        raise DataError(f"{path} has no 'TestVideoFile{{end+1}}.gt_frame = [...]' lines (truncated or not the "
                        f"UCSD ground-truth file)")
    return out


def _read_frames(files: list[Path]) -> np.ndarray:
    frames = [read_image(f, mode="L") for f in files]
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        bad = next(f for f, a in zip(files, frames) if a.shape != frames[0].shape)
        raise DataError(f"{bad} is {[a for f, a in zip(files, frames) if f == bad][0].shape} but {files[0]} is "
                        f"{frames[0].shape}; frames of one video must share a size (corrupt file?)")
    return np.stack(frames)


def load_ucsd(data_dir: Path, subset: str = "ped2", splits=("train", "test"), load_masks: bool = True,
              max_videos: int | None = None) -> UCSDData:
    """Read UCSD Ped1 or Ped2. ``max_videos`` keeps the first videos of each split (quick runs)."""
    subset = subset.lower().replace("ucsd", "").replace("_", "")
    if subset not in ("ped1", "ped2"):
        raise DataError(f"UCSD subset must be ped1 or ped2, not {subset!r}")
    root = find_ucsd_root(data_dir, subset)
    data = UCSDData(subset=subset, root=str(root))
    gt_lines: list[np.ndarray] | None = None
    m_file = find_gt_m(root, subset)
    if "test" in splits and m_file is not None:
        gt_lines = parse_gt_m(m_file)
    sources = set()
    for split in splits:
        kind = "Train" if split == "train" else "Test"
        parent = root / kind
        dirs = _video_dirs(parent, kind)
        if not dirs:
            raise DataError(f"no {kind}NNN folders in {parent}; expected {parent}/{kind}001/001.tif ...")
        if max_videos is not None:
            dirs = dirs[:max_videos]
        videos = []
        for d in dirs:
            files = _frame_files(d, (".tif", ".tiff"))
            if not files:
                raise DataError(f"no .tif frames in {d}; expected {d}/001.tif ... (incomplete extraction?)")
            frames = _read_frames(files)
            video = Video(d.name, frames, path=str(d))
            if split == "test":
                _attach_ground_truth(video, d, gt_lines, m_file, load_masks)
                sources.add(video.label_source)
            videos.append(video)
        setattr(data, split, videos)
    data.gt_source = ", ".join(sorted(s for s in sources if s)) or ("none" if "test" in splits else "")
    return data


def _attach_ground_truth(video: Video, d: Path, gt_lines, m_file: Path | None, load_masks: bool) -> None:
    t, h, w = video.frames.shape
    index = int(_VIDEO_DIR.match(d.name).group(2))
    gt_dir = d.parent / f"{d.name}_gt"
    masks = None
    if gt_dir.is_dir() and (load_masks or gt_lines is None or index > len(gt_lines)):
        files = _frame_files(gt_dir, (".bmp", ".png", ".tif"))
        if len(files) != t:
            raise DataError(f"{gt_dir} has {len(files)} mask images but {d} has {t} frames (incomplete or "
                            f"truncated ground truth); re-extract {UCSD_URL}")
        m = _read_frames(files)
        if m.shape[1:] != (h, w):
            raise DataError(f"masks in {gt_dir} are {m.shape[1:]} but frames in {d} are {(h, w)}")
        masks = m > 0
    if gt_lines is not None and index <= len(gt_lines):
        frames = gt_lines[index - 1]
        if frames.size and (frames.min() < 1 or frames.max() > t):
            raise DataError(f"{m_file}: line {index} ({d.name}) marks frames {frames.min()}..{frames.max()} but "
                            f"{d} has {t} frames; the .m file does not match this tree")
        labels = np.zeros(t, np.int8)
        labels[frames - 1] = 1
        video.frame_labels, video.label_source = labels, m_file.name
    elif masks is not None:
        # No frame-level line for this video: a frame is anomalous iff any of its mask pixels is set.
        video.frame_labels = masks.reshape(t, -1).any(axis=1).astype(np.int8)
        video.label_source = "pixel masks"
    video.pixel_masks = masks if load_masks else None
