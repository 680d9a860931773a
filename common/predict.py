"""Score a folder of images or videos with a SavedModel export alone, as TF Serving would run it.

::

    python -m common.predict --model=<export_dir>/<model_name>/<version> --data_dir=<folder> --out=scores.csv \\
        [--signature=serving_default] [--batch_size=64] [--figure=extremes.png] [--input_range=-1,1]

The model is loaded with ``tf.saved_model.load`` and called through ``signatures[<name>]`` only: no project model
code, no Keras. Everything about the input is read from the signature (``structured_input_signature``): its one
float input's name, rank, size and channels decide what the folder is cut into:

* ``images`` (rank 4, ``[batch, H, W, C]``; OLED, NRE, artifacts, the permutation image tasks, OLED's UCSD
  ``patches``): every image file under the folder (recursively; .png .jpg .jpeg .bmp .tif .tiff) is one row. It
  is converted to C channels (Pillow "L" or "RGB"; gray is replicated to RGB) and brought to H x W (Pillow
  bilinear; ``pad`` centres an image that is smaller than H x W on black, as the permutation image tasks do;
  ``area`` is OpenCV INTER_AREA). A signature with ``None`` for H / W takes every image at its own size.
* ``frames`` (rank 4, ``[batch, H, W, C]`` named ``frames``; OLED on UCSD): every video is one row: a video file
  (.avi .mp4 ..., decoded with OpenCV) or a folder that directly holds frame images (e.g. UCSD ``Test001/``, frames
  in name order). Its frames are scored in batches of ``--batch_size``.
* ``clips`` (rank 5, ``[batch, M, H, W, C]``; the permutation video model): every video is one row; it is cut into
  the clips of M frames the model was evaluated on (``common.video_clips``: a clip starting at frame t holds frames
  t, t+(skip+1), ..., t+(M-1)(skip+1), one clip per start t = 0, stride, 2*stride, ...).

Hidden files and folders are skipped, and so is whatever matches ``--exclude=GLOB`` (a relative path or one of
its folder names, e.g. ``--exclude='*_gt'`` for the ground-truth mask folders beside UCSD's ``Test001/``).

Pixels (uint8 0..255) are mapped linearly to the model's input range, which the graph does not record. It is
taken, in this order, from ``--input_range``; from the export's metadata, ``<model>/assets.extra/export.json``
(written by ``common.export.export_saved_model(metadata=...)`` / ``common.lifecycle.Run.export``) and/or
``<model>/assets/preprocessing.json``; or from the known output names of this repository's exports (with a
warning saying so); otherwise the tool stops and asks for ``--input_range``. Both files hold JSON objects whose
top-level keys apply to every signature and whose ``"signatures": {name: {...}}`` entry overrides them for one
signature (preprocessing.json overrides export.json); the keys read (all optional, others are ignored)::

    {"kind": "images" | "frames" | "clips", "input_range": [-1, 1], "channels": 1, "size": [28, 28],
     "resize": "bilinear" | "pad" | "area", "frames_per_clip": 5, "frame_skip": 2, "input": "images"}

(``image_size`` is read as ``size``; ``input``, the input name, must be the signature's.)

The CSV (written atomically) has one row per image or video: ``path`` (relative to ``--data_dir``; ``.`` for the
folder itself) and every output of the signature. Images: a per-row scalar is one column; a per-row tensor of at
most ``--flatten_max`` values (by the signature's static shape) is flattened into ``<name>_0, <name>_1, ...``;
a larger one is summarised as ``<name>_size, <name>_mean, <name>_max, <name>_l2`` (number of values, their mean,
maximum and L2 norm). Videos: ``n_frames`` (frames decoded), ``n_scored`` (frames or clips scored), ``peak_frame``
(the frame, or the first frame of the clip, with the highest ranking output) and, for every output,
``<name>_max`` and ``<name>_mean`` over all the video's frames / clips (and all values of a per-frame tensor).

``--figure`` (default: the ``--out`` path with ``.png``; ``--figure=none``: none) is a PNG of the inputs with the highest and the lowest ``--rank_by`` column (default
``anomaly_score`` for images and ``anomaly_score_mean`` for videos, else the first per-row scalar output), the
column named in its title: the model-sized input of an image; for a video its peak frame (the middle frame
of its peak clip).

Bad input (missing or empty folder, unreadable file, no SavedModel, unknown signature, ...) is one ``error:``
line and exit status 2; nothing is written then.
"""
from __future__ import annotations

import csv
import fnmatch
import heapq
import io
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import ArgumentParser, ConfigError, DataError, ReproError, check_positive, exit_on_error, one_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".webm")
METADATA_FILES = (Path("assets.extra") / "export.json", Path("assets") / "preprocessing.json")  # later overrides
PREPROCESSING_ASSET = "assets.extra/export.json or assets/preprocessing.json"
KINDS = ("images", "frames", "clips")
RESIZES = ("bilinear", "pad", "area")

# The exports of this repository, recognised by their signature's input name and output names, and what their
# inputs are (read from each method's data code; used only for what the export's metadata does not say).
KNOWN_EXPORTS = (
    ("OLED (images / UCSD patches)", "images",
     {"anomaly_score", "s_rec", "s_mask", "s_cont", "mask", "reconstruction"},
     {"input_range": (-1.0, 1.0)}),                                    # oled_tf.data.to_unit_range
    ("OLED (UCSD frames)", "frames", {"anomaly_score", "s_rec", "s_mask", "s_cont", "patch_anomaly_score"},
     {"input_range": (-1.0, 1.0)}),
    ("NRE", "images", {"anomaly_score", "latent", "reconstruction"},
     {"input_range": (0.0, 1.0)}),                                     # nre_tf.model.to_float
    ("artifacts (discriminator)", "images", {"features", "real_probability", "damage_mask"},
     {"input_range": (-1.0, 1.0)}),                                    # artifacts_tf.data.to_model_range
    ("artifacts (classifier)", "images", {"probabilities", "class_id"},
     {"input_range": (-1.0, 1.0)}),
    ("permutation (image tasks)", "images", {"anomaly_score", "transformation_losses"},
     {"input_range": (-1.0, 1.0), "resize": "pad"}),                   # permutation_tf.image.data.to_model_input
    ("permutation (video)", "frames", {"anomaly_score", "anomaly_score_raw", "permutation_probabilities"},
     {"input_range": (0.0, 1.0), "resize": "area", "frame_skip": 2}),  # common.video_clips.segment_dataset
)


def warn(message: str) -> None:
    print(f"warning: {one_line(message)}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- model
def resolve_model_dir(path) -> Path:
    """The SavedModel folder: ``path`` itself, or (a TF Serving base path) its highest integer version."""
    p = Path(path)
    if not p.exists():
        raise ReproError(f"--model={p} does not exist; pass <export_dir>/<model_name>/<version>")
    if not p.is_dir():
        raise ReproError(f"--model={p} is a file, not a SavedModel folder; pass <export_dir>/<model_name>/<version>")
    if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
        return p
    versions = sorted(int(d.name) for d in p.iterdir()
                      if d.is_dir() and d.name.isdigit() and (d / "saved_model.pb").is_file())
    if versions:
        warn(f"--model={p} is a model folder; using its highest version {versions[-1]}, as TF Serving would")
        return p / str(versions[-1])
    raise ReproError(f"--model={p} is not a SavedModel (no saved_model.pb in it, nor in integer version folders); "
                     f"pass <export_dir>/<model_name>/<version>")


def load_signature(model_dir: Path, name: str):
    """``(loaded object, concrete function)`` of signature ``name``; ReproError listing the ones there are."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(model_dir))
    except Exception as e:  # a corrupt saved_model.pb, missing variables, ... -> one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReproError(f"cannot load the SavedModel {model_dir}: {first}") from None
    sigs = dict(loaded.signatures)
    if not sigs:
        raise ReproError(f"the SavedModel {model_dir} has no signatures (TF Serving could not serve it)")
    if name not in sigs:
        raise ReproError(f"--signature={name!r} is not in {model_dir}; its signatures are: {', '.join(sorted(sigs))}")
    return loaded, sigs[name]


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    input_name: str
    input_shape: tuple            # without the batch dimension; None = any size
    outputs: dict                 # output name -> static shape without the batch dimension (tuple, None = unknown)
    output_dtypes: dict


def signature_info(name: str, fn) -> SignatureInfo:
    args, kwargs = fn.structured_input_signature
    specs = dict(kwargs)
    for i, s in enumerate(args):
        specs[getattr(s, "name", None) or f"input_{i}"] = s
    if len(specs) != 1:
        raise ReproError(f"signature {name!r} takes {len(specs)} inputs ({', '.join(sorted(specs))}); "
                         f"common.predict scores one-input signatures only")
    input_name, spec = next(iter(specs.items()))
    if not spec.dtype.is_floating:
        raise ReproError(f"signature {name!r} takes {spec.dtype.name} {input_name!r}; common.predict feeds float "
                         f"pixels only")
    if spec.shape.rank is None:
        raise ReproError(f"signature {name!r} input {input_name!r} has an unknown rank")
    outputs, dtypes = {}, {}
    for k, o in fn.structured_outputs.items():
        shape = o.shape
        outputs[k] = None if shape.rank is None else tuple(shape.as_list()[1:])
        dtypes[k] = o.dtype
    return SignatureInfo(name, input_name, tuple(spec.shape.as_list()[1:]), outputs, dtypes)


def known_export(info: SignatureInfo):
    """``(method, preprocessing)`` of the repository export these outputs belong to, or None."""
    for method, input_name, outputs, pre in KNOWN_EXPORTS:
        if info.input_name == input_name and set(info.outputs) == outputs:
            return method, pre
    return None


# ------------------------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocessing:
    kind: str                      # images | frames | clips
    input_range: tuple             # (lo, hi): pixel 0 -> lo, 255 -> hi
    channels: int                  # 1 or 3
    size: tuple | None             # (H, W); None = every input at its own size
    resize: str                    # bilinear | pad | area
    frames_per_clip: int | None = None
    frame_skip: int = 0
    clip_stride: int = 1
    range_source: str = ""

    def to_model(self, x_uint8: np.ndarray) -> np.ndarray:
        """uint8 pixels -> float32 in ``input_range`` (x / (255 / (hi - lo)) + lo: x / 127.5 - 1 for [-1, 1])."""
        lo, hi = self.input_range
        return (np.asarray(x_uint8, np.float32) / np.float32(255.0 / (hi - lo)) + np.float32(lo)).astype(np.float32)

    @property
    def span(self) -> int:
        return (self.frames_per_clip - 1) * (self.frame_skip + 1) + 1


def parse_range(text: str, where: str) -> tuple:
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"{where}={text!r} must be 'lo,hi', e.g. --input_range=-1,1 or --input_range=0,1") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"{where}={text!r} must be two finite numbers lo < hi")
    return lo, hi


def _read_metadata_file(path: Path, signature: str) -> dict:
    """The validated preprocessing keys of one metadata file for ``signature``."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReproError(f"{path} is not valid JSON ({one_line(e)}); fix or remove it") from None
    if not isinstance(meta, dict):
        raise ReproError(f"{path} must hold a JSON object, not {type(meta).__name__}")
    per_sig = meta.get("signatures", {})
    if not isinstance(per_sig, dict) or not all(isinstance(v, dict) for v in per_sig.values()):
        raise ReproError(f"{path}: 'signatures' must map signature names to objects")
    merged = {k: v for k, v in meta.items() if k != "signatures"}
    merged.update(per_sig.get(signature, {}))
    if "image_size" in merged and "size" not in merged:
        merged["size"] = merged["image_size"]
    out = {}
    for k, v in merged.items():
        bad = f"{path}: {k!r} = {v!r} "
        if k == "kind":
            if v not in KINDS:
                raise ReproError(bad + f"must be one of {', '.join(KINDS)}")
        elif k == "input_range":
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                    and v[0] < v[1]):
                raise ReproError(bad + "must be [lo, hi] with lo < hi")
            v = (float(v[0]), float(v[1]))
        elif k == "channels":
            if v not in (1, 3):
                raise ReproError(bad + "must be 1 or 3")
        elif k == "size":
            if v is not None and not (isinstance(v, (list, tuple)) and len(v) == 2
                                      and all(isinstance(x, int) and x > 0 for x in v)):
                raise ReproError(bad + "must be [H, W] (positive integers) or null")
            v = None if v is None else (int(v[0]), int(v[1]))
        elif k == "resize":
            if v not in RESIZES:
                raise ReproError(bad + f"must be one of {', '.join(RESIZES)}")
        elif k in ("frames_per_clip", "frame_skip"):
            if not isinstance(v, int) or v < (1 if k == "frames_per_clip" else 0):
                raise ReproError(bad + ("must be an integer >= 1" if k == "frames_per_clip" else
                                        "must be an integer >= 0"))
        elif k == "input":
            if not isinstance(v, str):
                raise ReproError(bad + "must be the signature's input name")
        else:
            continue  # other keys (method, weights_digest, scaling notes, ...) are information for people
        out[k] = v
    return out


def read_preprocessing(model_dir: Path, signature: str) -> tuple[dict, str | None]:
    """The validated preprocessing keys for ``signature`` from the export's metadata files
    (:data:`METADATA_FILES`, a later one overriding an earlier one) and the file(s) they came from ({} and None
    when there is none)."""
    merged, sources = {}, []
    for rel in METADATA_FILES:
        path = model_dir / rel
        if path.is_file():
            merged.update(_read_metadata_file(path, signature))
            sources.append(str(path))
    return merged, (" + ".join(sources) if sources else None)


def resolve_preprocessing(info: SignatureInfo, meta: dict, meta_path: str | None, args) -> Preprocessing:
    """Decide how to cut and scale the folder from the signature, the export's metadata and the flags."""
    shape = info.input_shape
    if meta.get("input", info.input_name) != info.input_name:
        raise ReproError(f"{meta_path} describes input {meta['input']!r} for signature {info.name!r}, which takes "
                         f"{info.input_name!r}; the metadata belongs to another export")
    rank = len(shape) + 1
    if rank == 5:
        kind = "clips"
    elif rank == 4:
        kind = meta.get("kind") or ("frames" if info.input_name == "frames" else "images")
    else:
        raise ReproError(f"signature {info.name!r} takes {info.input_name!r} of rank {rank} {[None, *shape]}; "
                         f"common.predict handles images / frames [batch, H, W, C] and clips [batch, M, H, W, C]")
    if "kind" in meta and meta["kind"] != kind:
        raise ReproError(f"{meta_path} says kind {meta['kind']!r} but signature {info.name!r} takes "
                         f"{info.input_name!r} of rank {rank} ({kind})")
    hwc = shape[1:] if kind == "clips" else shape
    h, w, c = hwc
    source = f"signature {info.name!r} input {info.input_name!r} {[None, *shape]}"
    if c is not None and meta.get("channels", c) != c:
        raise ReproError(f"{meta_path} says {meta['channels']} channels but {source} has {c}")
    channels = c if c is not None else meta.get("channels", 3)
    if channels not in (1, 3):
        raise ReproError(f"{source} has {channels} channels; common.predict feeds 1 (gray) or 3 (RGB) channels")
    if h is not None and w is not None:
        if meta.get("size", (h, w)) not in ((h, w), None):
            raise ReproError(f"{meta_path} says size {list(meta['size'])} but {source} is {h}x{w}")
        size = (h, w)
    else:
        size = meta.get("size")
    m = shape[0] if kind == "clips" else None
    if kind == "clips":
        if m is None:
            raise ReproError(f"{source} does not fix the frames per clip M; common.predict needs a fixed M")
        if meta.get("frames_per_clip", m) != m:
            raise ReproError(f"{meta_path} says {meta['frames_per_clip']} frames per clip but {source} takes {m}")

    known = known_export(info)
    defaults = known[1] if known else {}
    if args.input_range is not None:
        input_range = parse_range(args.input_range, "--input_range")
        if "input_range" in meta and tuple(meta["input_range"]) != input_range:
            warn(f"--input_range={args.input_range} overrides {list(meta['input_range'])} of {meta_path}")
        range_source = "--input_range"
    elif "input_range" in meta:
        input_range, range_source = meta["input_range"], str(meta_path)
    elif known:
        input_range = defaults["input_range"]
        range_source = f"assumed for a {known[0]} export"
        warn(f"the export records no input_range (in {PREPROCESSING_ASSET}); assuming inputs in "
             f"[{input_range[0]:g}, {input_range[1]:g}] as for a {known[0]} export (recognised by its output "
             f"names); pass --input_range to override")
    else:
        raise ConfigError(f"the export records no input_range (in {PREPROCESSING_ASSET}) and its outputs "
                          f"({', '.join(sorted(info.outputs))}) match no export of this repository, so its input "
                          f"range is unknown; pass --input_range=-1,1 or --input_range=0,1")
    resize = (args.resize or meta.get("resize") or defaults.get("resize")
              or ("bilinear" if kind == "images" else "area"))
    skip = 0
    if kind != "clips" and args.frame_skip is not None:
        warn(f"--frame_skip is ignored: signature {info.name!r} takes {kind}, not clips")
    if kind == "clips":
        if args.frame_skip is not None:
            skip = args.frame_skip
        elif "frame_skip" in meta:
            skip = meta["frame_skip"]
        elif "frame_skip" in defaults:
            skip = defaults["frame_skip"]
            warn(f"assuming --frame_skip={skip} (the default of permutation_tf.train); pass --frame_skip to override")
        else:
            raise ConfigError(f"the export records no frame_skip (in {PREPROCESSING_ASSET}) saying how its clips "
                              f"of {m} frames are sampled; pass --frame_skip (0 = consecutive frames)")
    return Preprocessing(kind=kind, input_range=tuple(input_range), channels=int(channels),
                         size=None if size is None else (int(size[0]), int(size[1])), resize=resize,
                         frames_per_clip=m, frame_skip=int(skip), clip_stride=int(args.clip_stride),
                         range_source=range_source)


# ------------------------------------------------------------------------------------------- inputs
def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def _matches(rel: Path, patterns) -> bool:
    """``rel`` (a path relative to the data folder) or one of its folders matches a glob of ``--exclude``."""
    return any(fnmatch.fnmatch(rel.as_posix(), pat) or any(fnmatch.fnmatch(part, pat) for part in rel.parts)
               for pat in patterns)


def list_inputs(root: Path, kind: str, exclude=(), patterns=()) -> list[Path]:
    """Image files (``images``) or videos (files, and folders directly holding frame images) under ``root``,
    sorted by relative path; hidden files, the tool's own outputs (``exclude``) and paths matching a glob of
    ``patterns`` (``--exclude``, e.g. UCSD's ``*_gt`` mask folders) are skipped."""
    excluded = {Path(p).resolve() for p in exclude}
    names = {p.name for p in excluded}
    if root.is_file():
        return [root]
    files = sorted((p for p in root.rglob("*") if p.is_file() and _visible(p, root)
                    and not (p.name in names and p.resolve() in excluded)
                    and not (patterns and _matches(p.relative_to(root), patterns))),
                   key=lambda p: p.relative_to(root).as_posix())
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if kind == "images":
        return images
    folders = sorted({p.parent for p in images}, key=lambda p: p.relative_to(root).as_posix())
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS] + folders
    return sorted(videos, key=lambda p: p.relative_to(root).as_posix())


def check_data_dir(data_dir, exclude=(), patterns=()) -> Path:
    """The folder (or single file) to score; DataError when it is missing or holds no image or video."""
    root = Path(data_dir)
    if not root.exists():
        raise DataError(f"--data_dir={root} does not exist")
    if root.is_file():
        if root.suffix.lower() not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
            raise DataError(f"--data_dir={root} is a file that is neither an image ({', '.join(IMAGE_EXTENSIONS)}) "
                            f"nor a video ({', '.join(VIDEO_EXTENSIONS)})")
        return root
    if not list_inputs(root, "frames", exclude, patterns):
        raise DataError(f"--data_dir={root} holds no image ({', '.join(IMAGE_EXTENSIONS)}) and no video "
                        f"({', '.join(VIDEO_EXTENSIONS)}) file")
    return root


def fit_size(arr: np.ndarray, size, how: str) -> np.ndarray:
    """uint8 (H, W, C) -> (size[0], size[1], C): Pillow bilinear, centred on black (``pad``, when smaller in both
    sides; bilinear otherwise), or OpenCV INTER_AREA (``area``)."""
    if size is None or tuple(arr.shape[:2]) == tuple(size):
        return arr
    h, w = size
    if how == "pad" and arr.shape[0] <= h and arr.shape[1] <= w:
        out = np.zeros((h, w, arr.shape[2]), np.uint8)
        top, left = (h - arr.shape[0]) // 2, (w - arr.shape[1]) // 2
        out[top:top + arr.shape[0], left:left + arr.shape[1]] = arr
        return out
    if how == "area":
        import cv2

        out = cv2.resize(arr, (int(w), int(h)), interpolation=cv2.INTER_AREA)
        return out.reshape(h, w, arr.shape[2])
    from PIL import Image

    im = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return np.asarray(im.resize((int(w), int(h)), Image.BILINEAR)).reshape(h, w, arr.shape[2])


def load_image(path: Path, pre: Preprocessing) -> np.ndarray:
    """uint8 (H, W, C) of one image file, in the signature's channels and size (DataError naming the file)."""
    from common.data_images import read_image

    arr = read_image(path, mode="L" if pre.channels == 1 else "RGB")
    return fit_size(arr[..., None] if arr.ndim == 2 else arr, pre.size, pre.resize)


def load_video(path: Path, pre: Preprocessing) -> np.ndarray:
    """uint8 (T, H, W, C) of a video file (OpenCV) or a folder of frame images (name order)."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                       and not f.name.startswith("."))
        frames = [load_image(f, pre) for f in files]
        for f, a in zip(files, frames):
            if a.shape != frames[0].shape:
                raise DataError(f"{f} is {a.shape[1]}x{a.shape[0]} but {files[0]} is {frames[0].shape[1]}x"
                                f"{frames[0].shape[0]}; the frames of one video must share a size")
        return np.stack(frames)
    import cv2

    from common.data_video import read_video

    frames = read_video(path, size=pre.size if pre.resize == "area" else None)  # RGB uint8 (T, H, W, 3)
    if pre.channels == 1:
        frames = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None]
    if pre.size is not None and tuple(frames.shape[1:3]) != tuple(pre.size):
        frames = np.stack([fit_size(f, pre.size, pre.resize) for f in frames])
    return frames


# ------------------------------------------------------------------------------------------- columns
def image_columns(info: SignatureInfo, flatten_max: int) -> list[tuple[str, str, int]]:
    """``(column, output, mode)`` for images: mode -1 = scalar, n >= 0 = flattened element n, -2..-5 = size,
    mean, max, L2 of a larger tensor."""
    cols = []
    for name, shape in info.outputs.items():
        if shape == ():
            cols.append((name, name, -1))
        elif shape is not None and None not in shape and 0 < math.prod(shape) <= flatten_max:
            cols += [(f"{name}_{i}", name, i) for i in range(math.prod(shape))]
        else:
            cols += [(f"{name}_{s}", name, m) for s, m in (("size", -2), ("mean", -3), ("max", -4), ("l2", -5))]
    return cols


def video_columns(info: SignatureInfo) -> list[tuple[str, str, int]]:
    cols = []
    for name in info.outputs:
        cols += [(f"{name}_max", name, -4), (f"{name}_mean", name, -3)]
    return cols


def _value(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return format(float(v), ".9g")


def _summary(a: np.ndarray, mode: int, as_int: bool):
    a = np.asarray(a)
    if mode == -1:
        return a.item()
    if mode >= 0:
        return a.reshape(-1)[mode].item()
    if mode == -2:
        return int(a.size)
    a64 = a.astype(np.float64)
    if mode == -3:
        return float(a64.mean()) if a.size else float("nan")
    if mode == -4:
        return (a.max().item() if as_int else float(a64.max())) if a.size else float("nan")
    return float(np.sqrt(np.sum(a64 * a64)))


def rank_output(info: SignatureInfo) -> str:
    """The per-row scalar output that orders the figure: ``anomaly_score``, else the first scalar output."""
    if info.outputs.get("anomaly_score") == ():
        return "anomaly_score"
    scalars = [k for k, s in info.outputs.items() if s == ()]
    return scalars[0] if scalars else next(iter(info.outputs))


# ------------------------------------------------------------------------------------------- scoring
class Extremes:
    """The ``k`` rows with the highest and the lowest ranking value, with a picture of each."""

    def __init__(self, k: int):
        self.k, self.high, self.low, self.n = k, [], [], 0

    def add(self, value, label: str, picture):
        if picture is None or not np.isfinite(value):
            return
        self.n += 1
        item = (float(value), -self.n, label, picture)
        (heapq.heappush if len(self.high) < self.k else heapq.heappushpop)(self.high, item)
        low = (-float(value), -self.n, label, picture)
        (heapq.heappush if len(self.low) < self.k else heapq.heappushpop)(self.low, low)

    def rows(self):
        high = sorted(self.high, key=lambda t: (-t[0], -t[1]))
        low = sorted(self.low, key=lambda t: (-t[0], -t[1]))
        return [(v, lab, pic) for v, _, lab, pic in high], [(-v, lab, pic) for v, _, lab, pic in low]


def _call(fn, input_name: str, x: np.ndarray) -> dict:
    import tensorflow as tf

    out = fn(**{input_name: tf.constant(x)})
    res = {}
    for k, v in out.items():
        v = v.numpy()
        if v.ndim == 0 or v.shape[0] != x.shape[0]:
            raise ReproError(f"output {k!r} has shape {list(v.shape)} for a batch of {x.shape[0]}; common.predict "
                             f"needs one row per input")
        res[k] = v
    return res


def _runs(arrays):
    """Consecutive runs ``(start, stop)`` of equally shaped arrays (one shape per call of an any-size signature)."""
    start = 0
    for i in range(1, len(arrays) + 1):
        if i == len(arrays) or arrays[i].shape != arrays[start].shape:
            yield start, i
            start = i


def score_images(fn, info, pre, root, files, cols, rank_col, batch_size, extremes, progress):
    rows = []
    is_int = {k: info.output_dtypes[k].is_integer for k in info.outputs}
    with progress(total=len(files), desc="scoring", unit="image") as bar:
        for b in range(0, len(files), batch_size):
            chunk = files[b:b + batch_size]
            arrays = [load_image(f, pre) for f in chunk]
            outs = [None] * len(chunk)
            for s, e in _runs(arrays):
                res = _call(fn, info.input_name, pre.to_model(np.stack(arrays[s:e])))
                for i in range(s, e):
                    outs[i] = {k: v[i - s] for k, v in res.items()}
            for f, arr, out in zip(chunk, arrays, outs):
                row = {"path": _rel(f, root)}
                for col, name, mode in cols:
                    row[col] = _summary(out[name], mode, is_int[name])
                rows.append(row)
                extremes.add(row[rank_col], row["path"], arr)
            bar.update(len(chunk))
    return rows


def score_videos(fn, info, pre, root, videos, cols, rank_col, rank_name, batch_size, extremes, progress):
    rows = []
    is_int = {k: info.output_dtypes[k].is_integer for k in info.outputs}
    for v in progress(videos, desc="scoring", unit="video"):
        frames = load_video(v, pre)
        if pre.kind == "clips":
            n_clips = frames.shape[0] - pre.span + 1
            if n_clips < 1:
                raise DataError(f"{v} has {frames.shape[0]} frames, fewer than the {pre.span} that one clip of "
                                f"{pre.frames_per_clip} frames with skip {pre.frame_skip} spans")
            starts = np.arange(0, n_clips, pre.clip_stride)
            index = starts[:, None] + np.arange(pre.frames_per_clip)[None, :] * (pre.frame_skip + 1)
        else:
            starts = np.arange(frames.shape[0])
            index = starts[:, None]
        parts = []
        for b in range(0, len(index), batch_size):
            x = frames[index[b:b + batch_size]]          # (B, M, H, W, C) clips or (B, 1, H, W, C) frames
            parts.append(_call(fn, info.input_name, pre.to_model(x if pre.kind == "clips" else x[:, 0])))
        out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        ranking = out[rank_name].reshape(len(index), -1).max(axis=1)
        peak = int(np.argmax(ranking)) if np.isfinite(ranking).any() else 0
        row = {"path": _rel(v, root), "n_frames": int(frames.shape[0]), "n_scored": int(len(index)),
               "peak_frame": int(starts[peak])}
        for col, name, mode in cols:
            row[col] = _summary(out[name], mode, is_int[name])
        rows.append(row)
        show = frames[int(starts[peak]) + (pre.span // 2 if pre.kind == "clips" else 0)]
        extremes.add(row[rank_col], row["path"], show)
    return rows


def _rel(p: Path, root: Path) -> str:
    return p.name if root.is_file() else (p.relative_to(root).as_posix() or ".")


# ------------------------------------------------------------------------------------------- outputs
def csv_text(rows: list[dict], header: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r[h] if h in ("path",) else _value(r[h]) for h in header])
    return buf.getvalue()


def draw_figure(extremes: Extremes, path: Path, rank_col: str, title: str) -> None:
    """2 rows (highest / lowest ``rank_col``) x k pictures, each titled with its path and value; written to
    ``path`` itself (the caller renames it into place)."""
    from common.plots import pyplot, to_display

    plt = pyplot()
    high, low = extremes.rows()
    anomalous = rank_col.startswith("anomaly_score")
    labels = (("most anomalous" if anomalous else "highest") + f"\n{rank_col}",
              ("least anomalous" if anomalous else "lowest") + f"\n{rank_col}")
    n_cols = max(len(high), 1)
    fig, axes = plt.subplots(2, n_cols, figsize=(1.6 * n_cols + 1.4, 4.9), squeeze=False)
    for r, items in enumerate((high, low)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(items):
                value, label, pic = items[c]
                ax.imshow(to_display(pic, (0.0, 255.0)), cmap="gray", vmin=0, vmax=1)
                name = label if len(label) <= 18 else "..." + label[-15:]
                ax.set_title(f"{name}\n{value:.4g}", fontsize=7)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _check_outputs(out: Path, figure: Path | None) -> None:
    for flag, p in (("--out", out), ("--figure", figure)):
        if p is None:
            continue
        if p.is_dir():
            raise ConfigError(f"{flag}={p} is a folder; give a file name")
        parent = p.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"{flag}={p}: cannot create a file under {parent}")
    if figure is not None and figure.suffix.lower() != ".png":
        raise ConfigError(f"--figure={figure} must end in .png")
    if figure is not None and figure.resolve() == out.resolve():
        raise ConfigError("--figure and --out name the same file")


# ------------------------------------------------------------------------------------------- entry point
def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m common.predict",
        description="Score every image or video of a folder with a SavedModel export (tf.saved_model.load and its "
                    "signature only, as TF Serving runs it) and write one CSV row per input.",
        epilog="Images: one row per image file; scalar outputs are columns, tensors of at most --flatten_max values "
               "are flattened into <name>_0.., larger ones summarised as <name>_size/_mean/_max/_l2. Videos (a "
               "signature taking 'frames' [batch,H,W,C] or clips [batch,M,H,W,C]): one row per video file or folder "
               "of frame images; every per-frame (per-clip) output is aggregated over the video into <name>_max "
               "and <name>_mean (over all its values), plus n_frames, n_scored and peak_frame. The input range "
               "comes from --input_range, else the export's assets.extra/export.json or assets/preprocessing.json, "
               "else the known outputs of this "
               "repository's exports (with a warning). Write negative ranges with '=': --input_range=-1,1.")
    p.add_argument("--model", required=True, help="SavedModel folder <export_dir>/<model_name>/<version> (a model "
                   "folder holding integer versions means its highest version, as in TF Serving)")
    p.add_argument("--data_dir", required=True, help="folder of images or videos (searched recursively), or one file")
    p.add_argument("--out", required=True, help="CSV to write (atomically)")
    p.add_argument("--signature", default="serving_default", help="signature to call (default serving_default)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files and folders whose "
                   "relative path or name matches GLOB (repeatable), e.g. --exclude='*_gt' for UCSD's mask folders")
    p.add_argument("--batch_size", type=int, default=64, help="inputs (images, frames or clips) per call (64)")
    p.add_argument("--figure", default=None, help="PNG of the inputs with the highest and lowest --rank_by value "
                   "(default: the --out path with .png; 'none' for no figure)")
    p.add_argument("--rank_by", default=None, help="CSV column ordering the figure (default anomaly_score for "
                   "images, anomaly_score_mean for videos, else the first scalar output)")
    p.add_argument("--figure_count", type=int, default=8, help="pictures per figure row (8)")
    p.add_argument("--input_range", default=None, help="model input range of pixels 0..255 as 'lo,hi': '-1,1' "
                   "(OLED, artifacts, permutation image tasks) or '0,1' (NRE, permutation video); default: "
                   "the export's metadata (assets.extra/export.json, assets/preprocessing.json), else inferred for "
                   "this repository's exports")
    p.add_argument("--resize", choices=RESIZES, default=None, help="how inputs reach the signature's size: "
                   "bilinear (Pillow; default for images), pad (centre smaller images on black, else bilinear), "
                   "area (OpenCV INTER_AREA; default for video frames)")
    p.add_argument("--frame_skip", type=int, default=None, help="clips: frames skipped between a clip's frames "
                   "(default: the export's metadata, else 2 for the permutation video export)")
    p.add_argument("--clip_stride", type=int, default=1, help="clips: one clip every N start frames (1 = every "
                   "start, as the evaluation)")
    p.add_argument("--flatten_max", type=int, default=16, help="images: flatten tensor outputs of at most this "
                   "many values into columns (16)")
    return p


@exit_on_error
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_positive(batch_size=args.batch_size, figure_count=args.figure_count, clip_stride=args.clip_stride)
    if args.frame_skip is not None and args.frame_skip < 0:
        raise ConfigError(f"--frame_skip must be >= 0, got {args.frame_skip}")
    if args.flatten_max < 0:
        raise ConfigError(f"--flatten_max must be >= 0, got {args.flatten_max}")
    if args.input_range is not None:
        parse_range(args.input_range, "--input_range")
    out = Path(args.out)
    if args.figure is None:
        figure = out.with_suffix(".png")
    else:
        figure = None if args.figure.lower() == "none" else Path(args.figure)
    _check_outputs(out, figure)
    exclude = [out] + ([figure] if figure else [])
    root = check_data_dir(args.data_dir, exclude, args.exclude)
    model_dir = resolve_model_dir(args.model)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    _, fn = load_signature(model_dir, args.signature)
    info = signature_info(args.signature, fn)
    meta, meta_path = read_preprocessing(model_dir, args.signature)
    pre = resolve_preprocessing(info, meta, meta_path, args)

    inputs = list_inputs(root, "images" if pre.kind == "images" else "frames", exclude, args.exclude)
    if not inputs:
        if pre.kind == "images":
            raise DataError(f"--data_dir={root} holds no image file ({', '.join(IMAGE_EXTENSIONS)}); signature "
                            f"{info.name!r} takes images")
        raise DataError(f"--data_dir={root} holds no video ({', '.join(VIDEO_EXTENSIONS)}) and no folder of frame "
                        f"images; signature {info.name!r} takes {pre.kind}")
    videos = pre.kind != "images"
    cols = video_columns(info) if videos else image_columns(info, args.flatten_max)
    base = ["path"] + (["n_frames", "n_scored", "peak_frame"] if videos else [])
    header = base + [c for c, _, _ in cols]
    rank_name = rank_output(info)
    rank_col = args.rank_by or (f"{rank_name}_mean" if videos else
                                (rank_name if rank_name in header else next(c for c, _, _ in cols)))
    if rank_col not in header or rank_col == "path":
        raise ConfigError(f"--rank_by={rank_col!r} is not a numeric column; the columns are: {', '.join(header[1:])}")

    from common.training import progress

    extremes = Extremes(args.figure_count)
    if videos:
        rows = score_videos(fn, info, pre, root, inputs, cols, rank_col, rank_name, args.batch_size, extremes,
                            progress)
    else:
        rows = score_images(fn, info, pre, root, inputs, cols, rank_col, args.batch_size, extremes, progress)

    what = {"images": "images", "frames": "videos (frames)", "clips": "videos (clips)"}[pre.kind]
    tmp_png = None
    try:
        if figure is not None:
            figure.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_png = tempfile.mkstemp(dir=figure.parent, prefix=f".{figure.name}.", suffix=".tmp.png")
            os.close(fd)
            order = "highest / lowest" if not rank_col.startswith("anomaly_score") else "most / least anomalous by"
            draw_figure(extremes, Path(tmp_png), rank_col,
                        f"{model_dir.parent.name}/{model_dir.name} [{info.name}]: {order} {rank_col} "
                        f"({len(rows)} {what})")
        from common.config import write_text_atomic

        write_text_atomic(out, csv_text(rows, header))
        if tmp_png is not None:
            os.replace(tmp_png, figure)
            tmp_png = None
    finally:
        if tmp_png is not None and os.path.exists(tmp_png):
            os.unlink(tmp_png)
    lo, hi = pre.input_range
    print(f"wrote {len(rows)} rows ({what}) to {out}"
          + (f" and the figure {figure} (ranked by {rank_col})" if figure else "")
          + f"; inputs in [{lo:g}, {hi:g}] ({pre.range_source})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
