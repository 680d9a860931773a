"""PASCAL VOC 2007 classification: the official on-disk layout, its image-level labels and the mAP metric.

Layout (as extracted from VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar)::

    <root>/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2007/Annotations/<id>.xml        (object/name, object/difficult)
    <root>/VOCdevkit/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt

``root`` may also be the ``VOCdevkit`` or the ``VOC2007`` folder itself.

Image labels follow the devkit's classification ground truth (the ``<class>_<split>.txt`` files): +1 if the image
holds a non-difficult object of the class, 0 ("difficult", ignored when scoring that class) if it holds only
difficult ones, -1 otherwise. :func:`voc07_ap` is the VOC2007 devkit's 11-point interpolated average precision
(``VOCevalcls``: precision at recall >= 0, 0.1, ..., 1, maximum to the right, mean of the 11 values);
:func:`voc07_map` averages it over the 20 classes. Used by NRE Table 2 and the Spot-Artifacts transfer tables.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import DataError

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor"]


@dataclass
class VOCSet:
    """``x`` uint8 (N, H, W, 3) (resized if asked), ``labels`` int8 (N, 20) in {+1, 0, -1}, ``ids`` image ids."""
    x: np.ndarray
    labels: np.ndarray
    ids: list


def find_voc2007(root) -> Path:
    root = Path(root)
    for cand in (root / "VOCdevkit" / "VOC2007", root / "VOC2007", root):
        if (cand / "ImageSets" / "Main").is_dir() and (cand / "Annotations").is_dir():
            return cand
    raise DataError(f"no PASCAL VOC 2007 under {root}: expected {root}/VOCdevkit/VOC2007/{{JPEGImages,Annotations,"
                    "ImageSets/Main}} (extract VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar there)")


def image_labels(xml_path: Path) -> np.ndarray:
    """Devkit classification labels of one annotation file: int8 (20,) in {+1, 0, -1}."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as e:
        raise DataError(f"cannot read VOC annotation {xml_path}: {e}") from None
    lab = -np.ones(len(VOC_CLASSES), np.int8)
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise DataError(f"{xml_path}: unknown VOC class {name!r}")
        k = VOC_CLASSES.index(name)
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        if not difficult:
            lab[k] = 1
        elif lab[k] == -1:
            lab[k] = 0
    return lab


def load_voc2007(root, split: str = "trainval", size: tuple[int, int] | None = (227, 227),
                 limit: int | None = None) -> VOCSet:
    """Images and devkit labels of a VOC 2007 split (``train``, ``val``, ``trainval``, ``test``)."""
    from PIL import Image

    base = find_voc2007(root)
    list_file = base / "ImageSets" / "Main" / f"{split}.txt"
    if not list_file.exists():
        raise DataError(f"missing {list_file}; VOC 2007 splits are train, val, trainval, test")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if limit:
        ids = ids[:limit]
    if not ids:
        raise DataError(f"{list_file} lists no images")
    xs, labels = [], []
    for i in ids:
        jpg = base / "JPEGImages" / f"{i}.jpg"
        if not jpg.exists():
            raise DataError(f"missing image {jpg} listed in {list_file}")
        img = Image.open(jpg).convert("RGB")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        xs.append(np.asarray(img, np.uint8))
        labels.append(image_labels(base / "Annotations" / f"{i}.xml"))
    return VOCSet(np.stack(xs), np.stack(labels), ids)


def voc07_ap(scores, labels) -> float:
    """VOC2007 11-point interpolated AP of one class; ``labels`` in {+1, 0, -1}, 0 (difficult) ignored."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    keep = y != 0
    s, y = s[keep], y[keep]
    n_pos = int(np.sum(y > 0))
    if n_pos == 0:
        raise DataError("a VOC class has no positive image in the evaluated set; AP is undefined")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order] > 0)
    fp = np.cumsum(y[order] < 0)
    rec = tp / n_pos
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.linspace(0, 1, 11):
        p = prec[rec >= t]
        ap += (p.max() if p.size else 0.0) / 11.0
    return float(ap)


def voc07_map(scores, labels) -> float:
    """Mean over the classes (columns) that have a positive image of :func:`voc07_ap`; fraction in [0, 1]."""
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.shape != y.shape or s.ndim != 2:
        raise DataError(f"scores {s.shape} and labels {y.shape} must both be (N, n_classes)")
    aps = [voc07_ap(s[:, k], y[:, k]) for k in range(y.shape[1]) if np.any(y[:, k] > 0)]
    if not aps:
        raise DataError("no class has a positive image; cannot compute mAP")
    return float(np.mean(aps))
