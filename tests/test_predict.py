"""``python -m common.predict``: score a folder with a SavedModel export alone (no project model code).

Tiny untrained Keras functional models are exported through the project's real exporter
(:func:`common.export.export_saved_model`) with the input names and output names of the four methods' exports
(checked against the real serve functions' source in :func:`test_mirrored_names_match_the_real_exports`). The
tool runs on folders of tiny PNG / TIFF / BMP images, frame folders and .avi files written with OpenCV, and its
CSV is compared with the SavedModel called directly on inputs preprocessed here, independently of the tool.
"""
from __future__ import annotations

import csv
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "REPRO_NO_PROGRESS": "1"}
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool sets it itself

OLED_IMAGE_OUTPUTS = {"anomaly_score", "s_rec", "s_mask", "s_cont", "mask", "reconstruction"}
OLED_FRAME_OUTPUTS = {"anomaly_score", "s_rec", "s_mask", "s_cont", "patch_anomaly_score"}
NRE_OUTPUTS = {"anomaly_score", "latent", "reconstruction"}
ARTIFACTS_OUTPUTS = {"features", "real_probability", "damage_mask"}
CLASSIFIER_OUTPUTS = {"probabilities", "class_id"}
PERM_IMAGE_OUTPUTS = {"anomaly_score", "transformation_losses"}
PERM_VIDEO_OUTPUTS = {"anomaly_score", "anomaly_score_raw", "permutation_probabilities"}


# ------------------------------------------------------------------------------------------ tiny exports
@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """``{name: version folder}`` of tiny exports mirroring each method's signature names."""
    import keras
    import tensorflow as tf

    from common.export import Signature, export_saved_model

    keras.utils.set_random_seed(3)
    root = tmp_path_factory.mktemp("exports")
    out = {}

    # OLED: images in [-1, 1] -> scores + mask + reconstruction; UCSD: frames -> per-frame max over 6x6 patches.
    inp = keras.Input((None, None, 1))
    oled = keras.Model(inp, keras.layers.Conv2D(2, 3, padding="same")(inp))

    def oled_serve(images):
        y = oled(images)
        rec, mask = tf.tanh(y[..., :1]), tf.sigmoid(y[..., 1:])
        s_rec = tf.reduce_mean(tf.square(images - rec), axis=[1, 2, 3])
        s_mask = tf.reduce_mean(mask, axis=[1, 2, 3])
        s_cont = tf.reduce_mean(tf.abs(images * mask), axis=[1, 2, 3])
        return {"anomaly_score": (s_rec + s_mask + s_cont) / 3.0, "s_rec": s_rec, "s_mask": s_mask,
                "s_cont": s_cont, "mask": mask, "reconstruction": rec}

    def oled_frames(frames):
        p = tf.image.extract_patches(frames, [1, 6, 6, 1], [1, 6, 6, 1], [1, 1, 1, 1], "VALID")
        b, per = tf.shape(frames)[0], tf.shape(p)[1] * tf.shape(p)[2]
        scores = oled_serve(tf.reshape(p, [-1, 6, 6, 1]))
        per_patch = {k: tf.reshape(scores[k], tf.stack([b, per])) for k in ("anomaly_score", "s_rec", "s_mask",
                                                                              "s_cont")}
        res = {k: tf.reduce_max(v, axis=1) for k, v in per_patch.items()}
        res["patch_anomaly_score"] = per_patch["anomaly_score"]
        return res

    out["oled"] = export_saved_model(oled, oled_serve, root, "oled_mnist", (8, 8, 1))
    out["oled_ucsd"] = export_saved_model(oled, None, root, "oled_ucsd", signatures={
        "serving_default": Signature(oled_frames, (None, None, 1), "frames"),
        "patches": Signature(oled_serve, (6, 6, 1), "images")})

    # NRE: images in [0, 1] -> anomaly_score, latent, reconstruction.
    inp = keras.Input((8, 8, 1))
    z = keras.layers.Dense(4)(keras.layers.Flatten()(inp))
    rec = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="sigmoid")(z))
    nre = keras.Model(inp, [z, rec])

    def nre_serve(images):
        z, r = nre(images)
        return {"anomaly_score": tf.reduce_mean(tf.square(images - r), axis=[1, 2, 3]), "latent": z,
                "reconstruction": r}

    out["nre"] = export_saved_model(nre, nre_serve, root, "nre_mnist", (8, 8, 1))

    # artifacts: RGB in [-1, 1] -> features (B, 32), real_probability (B,), damage_mask (B, 2, 2); + classifier.
    inp = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(32, 3, strides=4, padding="same", activation="relu")(inp)
    disc = keras.Model(inp, [conv, keras.layers.Conv2D(1, 1)(conv),
                             keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(conv))])
    head = keras.Sequential([keras.Input((32,)), keras.layers.Dense(3)])

    def art_serve(images):
        c, m, logit = disc(images)
        return {"features": tf.reduce_mean(c, axis=(1, 2)), "real_probability": tf.sigmoid(logit[:, 0]),
                "damage_mask": 1.0 - tf.sigmoid(m[..., 0])}

    def classify(images):
        p = tf.nn.softmax(head(tf.reduce_mean(disc(images)[0], axis=(1, 2))))
        return {"probabilities": p, "class_id": tf.argmax(p, axis=-1, output_type=tf.int32)}

    out["artifacts"] = export_saved_model(disc, art_serve, root, "artifacts_cifar10", (8, 8, 3))
    out["classifier"] = export_saved_model([disc, head], classify, root, "artifacts_cifar10_classifier", (8, 8, 3))

    # permutation image tasks: images in [-1, 1] (smaller ones padded) -> anomaly_score, transformation_losses.
    inp = keras.Input((8, 8, 1))
    pim = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(inp)))

    def pim_serve(images):
        losses = tf.nn.softplus(pim(images))
        return {"anomaly_score": tf.reduce_mean(losses, axis=1), "transformation_losses": losses}

    out["perm_image"] = export_saved_model(pim, pim_serve, root, "permutation_rotation_mnist_0", (8, 8, 1))

    # permutation video: clips (B, M=3, 8, 8, 3) in [0, 1] -> anomaly_score, anomaly_score_raw, probabilities.
    inp = keras.Input((3, 8, 8, 3))
    pvid = keras.Model(inp, keras.layers.Dense(6)(keras.layers.Flatten()(inp)))

    def pvid_serve(frames):
        logits = pvid(frames)
        raw = tf.reduce_logsumexp(logits, axis=1) - logits[:, 0]
        return {"anomaly_score": (raw - 0.5) / 2.0, "anomaly_score_raw": raw,
                "permutation_probabilities": tf.nn.softmax(logits, axis=-1)}

    out["perm_video"] = export_saved_model(pvid, pvid_serve, root, "permutation_ucf101_0", (3, 8, 8, 3),
                                           input_name="frames")

    # OLED images with the metadata common.lifecycle.Run.export writes (assets.extra/export.json), saying [0, 1]
    # (not OLED's [-1, 1], so that reading it shows in the scores).
    meta = {"method": "oled", "model_name": "oled_meta", "weights_digest": "0" * 16,
            "signatures": {"serving_default": {"input": "images", "input_shape": [8, 8, 1], "input_range": [0.0, 1.0],
                                               "kind": "images", "channels": 1, "size": [8, 8]}}}
    if "metadata" in inspect.signature(export_saved_model).parameters:
        out["oled_meta"] = export_saved_model(oled, oled_serve, root, "oled_meta", (8, 8, 1), metadata=meta)
    else:  # an exporter without metadata support: the file where the lifecycle puts it
        out["oled_meta"] = export_saved_model(oled, oled_serve, root, "oled_meta", (8, 8, 1))
        (out["oled_meta"] / "assets.extra").mkdir()
        (out["oled_meta"] / "assets.extra" / "export.json").write_text(json.dumps(meta))
    assert (out["oled_meta"] / "assets.extra" / "export.json").is_file()

    # A model whose outputs match no export of this repository: its input range must be given.
    out["unknown"] = export_saved_model(pim, lambda images: {"score": tf.reduce_sum(pim(images), axis=1)}, root,
                                        "other", (8, 8, 1))
    return out


# ------------------------------------------------------------------------------------------ folders
def _png(path: Path, arr: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _avi(path: Path, frames_rgb: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (w, h))
    assert writer.isOpened()
    for f in frames_rgb:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _rand(rng, *shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """5 images (8x8 gray, 8x8 RGB in a subfolder, 10x12 gray, 6x6 gray bmp, 8x8 tif) and files to ignore."""
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("images")
    _png(d / "a.png", _rand(rng, 8, 8))
    _png(d / "sub" / "b.png", _rand(rng, 8, 8, 3))
    _png(d / "c_big.png", _rand(rng, 10, 12))
    _png(d / "sub" / "deeper" / "d_small.bmp", _rand(rng, 6, 6))
    _png(d / "e.tif", _rand(rng, 8, 8))
    _png(d / ".hidden" / "x.png", _rand(rng, 8, 8))
    (d / "notes.txt").write_text("not an image")
    return d


EXPECTED_PATHS = ["a.png", "c_big.png", "e.tif", "sub/b.png", "sub/deeper/d_small.bmp"]


def _reference_image(path: Path, mode: str, size=(8, 8), pad: bool = False) -> np.ndarray:
    """uint8 (H, W, C) as the tool should feed it (Pillow conversion + bilinear resize, or centre padding)."""
    from PIL import Image

    im = Image.open(path).convert(mode)
    arr = np.asarray(im)
    if arr.shape[:2] != size:
        if pad and arr.shape[0] <= size[0] and arr.shape[1] <= size[1]:
            out = np.zeros(size + arr.shape[2:], np.uint8)
            t, l = (size[0] - arr.shape[0]) // 2, (size[1] - arr.shape[1]) // 2
            out[t:t + arr.shape[0], l:l + arr.shape[1]] = arr
            arr = out
        else:
            arr = np.asarray(im.resize((size[1], size[0]), Image.BILINEAR))
    return arr[..., None] if arr.ndim == 2 else arr


def _direct(model_dir: Path, x: np.ndarray, signature: str = "serving_default", input_name: str = "images"):
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures[signature]
    return {k: v.numpy() for k, v in fn(**{input_name: tf.constant(x.astype(np.float32))}).items()}


def _read_csv(path: Path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, list(rows[0].keys()) if rows else []


def _col(rows, name) -> np.ndarray:
    return np.array([float(r[name]) for r in rows])


# ------------------------------------------------------------------------------------------ runners
def _decoded_frames(path) -> list:
    """Every frame of a video file as OpenCV decodes it (BGR)."""
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "common.predict", *map(str, args)], capture_output=True,
                          text=True, env=ENV, cwd=str(REPO), timeout=timeout)


def _inproc(capsys, monkeypatch, *args):
    """``common.predict.main`` in this process (TensorFlow is already imported): (exit status, stdout, stderr)."""
    from common import predict

    monkeypatch.setenv("REPRO_NO_PROGRESS", "1")
    capsys.readouterr()
    try:
        rc = predict.main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_error(rc, err, *needles):
    assert rc == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in errors[0], errors[0]


# ------------------------------------------------------------------------------------------ tests
def test_oled_images_cli_subprocess(exports, image_folder, tmp_path):
    """The real command line: every image is one row, every output a column, scores as the SavedModel gives."""
    out, fig = tmp_path / "res" / "scores.csv", tmp_path / "res" / "extremes.png"
    proc = _cli(f"--model={exports['oled']}", f"--data_dir={image_folder}", f"--out={out}", f"--figure={fig}",
                "--batch_size=2")
    assert proc.returncode == 0, proc.stderr
    rows, cols = _read_csv(out)
    assert [r["path"] for r in rows] == EXPECTED_PATHS
    for name in ("anomaly_score", "s_rec", "s_mask", "s_cont"):
        assert name in cols
    for name in ("mask", "reconstruction"):   # 64 values each > --flatten_max: summarised
        assert {f"{name}_size", f"{name}_mean", f"{name}_max", f"{name}_l2"} <= set(cols)
    assert all(r["mask_size"] == "64" for r in rows)
    x = np.stack([_reference_image(image_folder / p, "L") for p in EXPECTED_PATHS]) / 127.5 - 1.0
    want = _direct(exports["oled"], x)
    for name in ("anomaly_score", "s_rec", "s_mask", "s_cont"):
        np.testing.assert_allclose(_col(rows, name), want[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_col(rows, "mask_mean"), want["mask"].reshape(5, -1).mean(1), rtol=1e-5)
    np.testing.assert_allclose(_col(rows, "reconstruction_l2"),
                               np.linalg.norm(want["reconstruction"].reshape(5, -1), axis=1), rtol=1e-5)
    from PIL import Image

    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert "warning:" in proc.stderr and "[-1, 1]" in proc.stderr    # no preprocessing.json: range assumed, said
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("wrote 5 rows (images)") and str(out) in summary and str(fig) in summary
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]   # no temporary file left


def test_permutation_video_clips_subprocess(exports, tmp_path):
    """Rank-5 ``frames``: every video (an .avi and a folder of frames) is cut into clips of M=3 frames with the
    permutation default skip 2 (frames t, t+3, t+6); per-clip outputs aggregated with max and mean."""
    import cv2

    rng = np.random.default_rng(1)
    d = tmp_path / "videos"
    _avi(d / "walk.avi", _rand(rng, 8, 16, 16, 3))
    for i in range(7):
        _png(d / "frames_b" / f"{i:03d}.png", _rand(rng, 8, 8, 3))
    out, fig = tmp_path / "clips.csv", tmp_path / "clips.png"
    proc = _cli(f"--model={exports['perm_video']}", f"--data_dir={d}", f"--out={out}", "--batch_size=4")
    assert proc.returncode == 0, proc.stderr
    assert fig.is_file()  # the figure goes beside the CSV by default
    rows, cols = _read_csv(out)
    assert [r["path"] for r in rows] == ["frames_b", "walk.avi"]
    for name in PERM_VIDEO_OUTPUTS:
        assert f"{name}_max" in cols and f"{name}_mean" in cols
    decoded = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), (8, 8), interpolation=cv2.INTER_AREA)
               for f in _decoded_frames(d / "walk.avi")]
    videos = {"walk.avi": np.stack(decoded),
              "frames_b": np.stack([_reference_image(d / "frames_b" / f"{i:03d}.png", "RGB") for i in range(7)])}
    for r in rows:
        frames = videos[r["path"]]
        starts = np.arange(len(frames) - 6)
        clips = frames[starts[:, None] + np.array([0, 3, 6])[None, :]] / 255.0
        want = _direct(exports["perm_video"], clips, input_name="frames")
        assert int(r["n_frames"]) == len(frames) and int(r["n_scored"]) == len(starts)
        assert int(r["peak_frame"]) == int(np.argmax(want["anomaly_score"]))
        for name in PERM_VIDEO_OUTPUTS:
            np.testing.assert_allclose(float(r[f"{name}_max"]), want[name].max(), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(float(r[f"{name}_mean"]), want[name].mean(), rtol=1e-4, atol=1e-5)
    assert fig.is_file() and "frame_skip=2" in proc.stderr
    assert "anomaly_score_mean" in proc.stdout


def test_oled_ucsd_frames_and_patches(exports, tmp_path, capsys, monkeypatch):
    """Rank-4 ``frames`` (OLED on UCSD, any frame size): one row per video (TIFF frame folder, PNG frame folder,
    .avi) with per-frame outputs aggregated by max and mean; the ``patches`` signature takes the frames as images."""
    import cv2

    rng = np.random.default_rng(2)
    d = tmp_path / "ucsd"
    for i in range(3):
        _png(d / "Test001" / f"{i:03d}.tif", _rand(rng, 12, 18))
    for i in range(2):
        _png(d / "Test002" / f"{i:03d}.png", _rand(rng, 12, 12))
    _avi(d / "clip.avi", _rand(rng, 3, 16, 16, 3))
    _png(d / "Test001_gt" / "000.bmp", _rand(rng, 12, 18))      # UCSD's ground-truth masks: --exclude them
    out = tmp_path / "frames.csv"
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={exports['oled_ucsd']}", f"--data_dir={d}",
                              f"--out={out}", "--batch_size=2", "--exclude=*_gt")
    assert rc == 0, err
    rows, cols = _read_csv(out)
    assert [r["path"] for r in rows] == ["Test001", "Test002", "clip.avi"]
    for name in OLED_FRAME_OUTPUTS:
        assert f"{name}_max" in cols and f"{name}_mean" in cols
    decoded = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in _decoded_frames(d / "clip.avi")]
    videos = {"Test001": [_reference_image(p, "L", (12, 18)) for p in sorted((d / "Test001").iterdir())],
              "Test002": [_reference_image(p, "L", (12, 12)) for p in sorted((d / "Test002").iterdir())],
              "clip.avi": [f[..., None] for f in decoded]}
    for r in rows:
        want = _direct(exports["oled_ucsd"], np.stack(videos[r["path"]]) / 127.5 - 1.0, input_name="frames")
        assert int(r["n_frames"]) == len(videos[r["path"]])
        for name in OLED_FRAME_OUTPUTS:
            np.testing.assert_allclose(float(r[f"{name}_max"]), want[name].max(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(float(r[f"{name}_mean"]), want[name].mean(), rtol=1e-5, atol=1e-6)

    out2 = tmp_path / "patches.csv"
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['oled_ucsd']}", "--signature=patches",
                         f"--data_dir={d / 'Test001'}", f"--out={out2}")
    assert rc == 0, err
    rows, cols = _read_csv(out2)
    assert len(rows) == 3 and OLED_IMAGE_OUTPUTS - {"mask", "reconstruction"} <= set(cols)
    assert {f"mask_{i}" for i in range(16)}.isdisjoint(cols) and "mask_l2" in cols   # 36 values > 16
    x = np.stack([_reference_image(d / "Test001" / r["path"], "L", (6, 6)) for r in rows]) / 127.5 - 1.0
    want = _direct(exports["oled_ucsd"], x, signature="patches")
    np.testing.assert_allclose(_col(rows, "anomaly_score"), want["anomaly_score"], rtol=1e-5, atol=1e-6)


def test_nre_artifacts_classifier_permutation_images(exports, image_folder, tmp_path, capsys, monkeypatch):
    """The other image exports: NRE in [0, 1]; artifacts RGB in [-1, 1] (gray replicated) with small tensors
    flattened into columns; the classifier's integer class_id; the permutation image task padding small images."""
    paths = [image_folder / p for p in EXPECTED_PATHS]
    cases = {
        "nre": (NRE_OUTPUTS, "L", lambda a: a / 255.0, False),
        "artifacts": (ARTIFACTS_OUTPUTS, "RGB", lambda a: a / 127.5 - 1.0, False),
        "classifier": (CLASSIFIER_OUTPUTS, "RGB", lambda a: a / 127.5 - 1.0, False),
        "perm_image": (PERM_IMAGE_OUTPUTS, "L", lambda a: a / 127.5 - 1.0, True),
    }
    results = {}
    for key, (names, mode, scale, pad) in cases.items():
        out, fig = tmp_path / f"{key}.csv", tmp_path / f"{key}.png"
        rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={exports[key]}", f"--data_dir={image_folder}",
                                  f"--out={out}", f"--figure={fig}")
        assert rc == 0, (key, err)
        rows, cols = _read_csv(out)
        assert [r["path"] for r in rows] == EXPECTED_PATHS and fig.is_file()
        for name in names:
            assert any(c == name or c.startswith(name + "_") for c in cols), (key, name, cols)
        want = _direct(exports[key], scale(np.stack([_reference_image(p, mode, pad=pad) for p in paths])))
        results[key] = (rows, cols, want, stdout)
    rows, cols, want, _ = results["nre"]
    np.testing.assert_allclose(_col(rows, "anomaly_score"), want["anomaly_score"], rtol=1e-5, atol=1e-7)
    for i in range(4):                                   # latent (4 values) flattened
        np.testing.assert_allclose(_col(rows, f"latent_{i}"), want["latent"][:, i], rtol=1e-5, atol=1e-6)
    rows, cols, want, stdout = results["artifacts"]
    np.testing.assert_allclose(_col(rows, "real_probability"), want["real_probability"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_col(rows, "features_l2"), np.linalg.norm(want["features"], axis=1), rtol=1e-5)
    assert all(r["features_size"] == "32" for r in rows)
    for i in range(4):                                   # damage_mask (2, 2) flattened row-major
        np.testing.assert_allclose(_col(rows, f"damage_mask_{i}"), want["damage_mask"].reshape(5, 4)[:, i],
                                   rtol=1e-5, atol=1e-6)
    assert "ranked by real_probability" in stdout        # no anomaly_score: the first scalar output
    rows, cols, want, _ = results["classifier"]
    assert [int(r["class_id"]) for r in rows] == want["class_id"].tolist() and "." not in rows[0]["class_id"]
    np.testing.assert_allclose(_col(rows, "probabilities_2"), want["probabilities"][:, 2], rtol=1e-5, atol=1e-6)
    rows, cols, want, _ = results["perm_image"]
    np.testing.assert_allclose(_col(rows, "anomaly_score"), want["anomaly_score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_col(rows, "transformation_losses_3"), want["transformation_losses"][:, 3],
                               rtol=1e-5, atol=1e-6)


def test_export_metadata_is_read(exports, image_folder, tmp_path, capsys, monkeypatch):
    """The exporter's ``assets.extra/export.json`` gives the input range (no warning, scores in its range);
    metadata describing another input name is one error naming the file."""
    x = np.stack([_reference_image(image_folder / p, "L") for p in EXPECTED_PATHS])
    out = tmp_path / "meta.csv"
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={exports['oled_meta']}", f"--data_dir={image_folder}",
                              f"--out={out}")
    assert rc == 0 and "warning" not in err, err
    assert "export.json" in stdout and "[0, 1]" in stdout
    want = _direct(exports["oled_meta"], x / 255.0)["anomaly_score"]
    np.testing.assert_allclose(_col(_read_csv(out)[0], "anomaly_score"), want, rtol=1e-5, atol=1e-6)

    other = tmp_path / "oled_other" / "1"
    shutil.copytree(exports["oled_meta"], other)
    meta_file = other / "assets.extra" / "export.json"
    meta = json.loads(meta_file.read_text())
    meta["signatures"]["serving_default"]["input"] = "frames"
    meta_file.write_text(json.dumps(meta))
    out2 = tmp_path / "other.csv"
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={other}", f"--data_dir={image_folder}", f"--out={out2}")
    _assert_one_error(rc, err, "export.json", "'frames'")
    assert not out2.exists()


def test_preprocessing_json_and_input_range_flag(exports, image_folder, tmp_path, capsys, monkeypatch):
    """``assets/preprocessing.json`` decides range and resizing (no warning); ``--input_range`` overrides it; an
    export nobody knows needs the flag; a bad preprocessing.json is one error naming the file."""
    model = tmp_path / "perm_image_meta" / "1"
    shutil.copytree(exports["perm_image"], model)
    meta = model / "assets" / "preprocessing.json"
    meta.parent.mkdir(exist_ok=True)
    meta.write_text(json.dumps({"kind": "images", "input_range": [0, 1], "channels": 1, "size": [8, 8],
                                "resize": "bilinear", "method": "permutation"}))
    paths = [image_folder / p for p in EXPECTED_PATHS]
    ref = {pad: np.stack([_reference_image(p, "L", pad=pad) for p in paths]) for pad in (False, True)}
    out = tmp_path / "meta.csv"
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={model}", f"--data_dir={image_folder}", f"--out={out}")
    assert rc == 0 and "warning" not in err, err
    assert "preprocessing.json" in stdout
    want = _direct(model, ref[False] / 255.0)["anomaly_score"]
    np.testing.assert_allclose(_col(_read_csv(out)[0], "anomaly_score"), want, rtol=1e-5, atol=1e-6)

    rc, _, err = _inproc(capsys, monkeypatch, f"--model={model}", f"--data_dir={image_folder}", f"--out={out}",
                         "--input_range=-1,1", "--resize=pad")
    assert rc == 0 and "overrides" in err, err
    want = _direct(model, ref[True] / 127.5 - 1.0)["anomaly_score"]
    np.testing.assert_allclose(_col(_read_csv(out)[0], "anomaly_score"), want, rtol=1e-5, atol=1e-6)

    out3 = tmp_path / "unknown.csv"
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['unknown']}", f"--data_dir={image_folder}",
                         f"--out={out3}")
    _assert_one_error(rc, err, "--input_range", "score")
    assert not out3.exists()
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={exports['unknown']}", f"--data_dir={image_folder}",
                              f"--out={out3}", "--input_range=0,1")
    assert rc == 0, err
    want = _direct(exports["unknown"], ref[False] / 255.0)["score"]
    np.testing.assert_allclose(_col(_read_csv(out3)[0], "score"), want, rtol=1e-5, atol=1e-5)

    meta.write_text(json.dumps({"input_range": [1, -1]}))
    out4 = tmp_path / "bad_meta.csv"
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={model}", f"--data_dir={image_folder}", f"--out={out4}")
    _assert_one_error(rc, err, "preprocessing.json", "input_range")
    assert not out4.exists()


def test_errors_before_tensorflow_subprocess(exports, image_folder, tmp_path):
    """Missing folder, a folder without images or videos, a folder that is no SavedModel, a bad flag: one
    ``error:`` line, exit 2, no CSV."""
    out = tmp_path / "never.csv"
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("x")
    not_model = tmp_path / "not_a_model"
    not_model.mkdir()
    cases = [
        ((f"--model={exports['oled']}", f"--data_dir={tmp_path / 'missing'}"), ("--data_dir", "does not exist")),
        ((f"--model={exports['oled']}", f"--data_dir={empty}"), ("no image", str(empty))),
        ((f"--model={not_model}", f"--data_dir={image_folder}"), ("not a SavedModel", str(not_model))),
        ((f"--model={exports['oled']}", f"--data_dir={image_folder}", "--batch_size=0"), ("--batch_size",)),
        ((f"--model={exports['oled']}", f"--data_dir={image_folder}", "--input_range=1,0"), ("--input_range",)),
    ]
    for args, needles in cases:
        proc = _cli(*args, f"--out={out}", timeout=60)
        _assert_one_error(proc.returncode, proc.stderr, *needles)
        assert not out.exists()


def test_errors_after_loading(exports, image_folder, tmp_path, capsys, monkeypatch):
    """Unknown signature (the available ones listed), an unreadable image (named), a too short video (named),
    images given to a video model: one ``error:`` line, exit 2, nothing written."""
    out, fig = tmp_path / "never.csv", tmp_path / "never.png"
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['oled_ucsd']}", "--signature=nope",
                         f"--data_dir={image_folder}", f"--out={out}")
    _assert_one_error(rc, err, "'nope'", "patches", "serving_default")

    bad = tmp_path / "bad"
    shutil.copytree(image_folder, bad)
    (bad / "sub" / "broken.png").write_bytes((bad / "a.png").read_bytes()[:40])
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['oled']}", f"--data_dir={bad}", f"--out={out}",
                         f"--figure={fig}")
    _assert_one_error(rc, err, "broken.png")

    short = tmp_path / "short"
    for i in range(4):                                   # one clip of M=3 with skip 2 spans 7 frames
        _png(short / "v" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['perm_video']}", f"--data_dir={short}",
                         f"--out={out}")
    _assert_one_error(rc, err, str(short / "v"), "7")

    only_video = tmp_path / "only_video"
    _avi(only_video / "x.avi", np.zeros((3, 16, 16, 3), np.uint8))
    rc, _, err = _inproc(capsys, monkeypatch, f"--model={exports['oled']}", f"--data_dir={only_video}",
                         f"--out={out}")
    _assert_one_error(rc, err, "no image file")
    assert not out.exists() and not fig.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_saved_model_cli_shows_the_contract(exports):
    """TensorFlow's own ``saved_model_cli show --all`` sees the signature names, the input names and every
    output name of an export that predict reads."""
    cli = Path(sys.executable).parent / "saved_model_cli"
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    proc = subprocess.run([*cmd, "show", "--dir", str(exports["oled_ucsd"]), "--all"], capture_output=True,
                          text=True, env={**ENV, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "signature_def['serving_default']" in text and "signature_def['patches']" in text
    assert "inputs['frames']" in text and "inputs['images']" in text
    for name in OLED_FRAME_OUTPUTS | OLED_IMAGE_OUTPUTS:
        assert f"outputs['{name}']" in text, name


def _package_source(package: str) -> str:
    return "\n".join(p.read_text() for p in sorted((REPO / package).rglob("*.py")))


def test_mirrored_names_match_the_real_exports():
    """The tiny exports above use the input and output names of the real exporters and serve functions (read
    from their source, so a renamed output breaks this test), and predict's table of known exports agrees."""
    from artifacts_tf.model import discriminator_serve_fn
    from common import predict
    from oled_tf.model import OLED, SCORE_NAMES
    from nre_tf.model import NREModel
    from permutation_tf.image.model import PretextModel
    from permutation_tf.model import FramePermutationModel

    every = (OLED_IMAGE_OUTPUTS | OLED_FRAME_OUTPUTS | NRE_OUTPUTS | ARTIFACTS_OUTPUTS | CLASSIFIER_OUTPUTS
             | PERM_IMAGE_OUTPUTS | PERM_VIDEO_OUTPUTS)

    def keys(fn):
        src = inspect.getsource(fn)
        return {n for n in every if f'"{n}"' in src}

    assert keys(OLED.serve) == OLED_IMAGE_OUTPUTS
    assert keys(OLED.serve_frames) == OLED_FRAME_OUTPUTS - set(SCORE_NAMES)
    assert "SCORE_NAMES" in inspect.getsource(OLED.serve_frames) and set(SCORE_NAMES) == {"s_rec", "s_mask", "s_cont"}
    assert keys(NREModel.serve) == NRE_OUTPUTS
    assert keys(discriminator_serve_fn) == ARTIFACTS_OUTPUTS
    assert all(f'"{n}"' in _package_source("artifacts_tf") for n in CLASSIFIER_OUTPUTS)
    assert keys(PretextModel.serve) == PERM_IMAGE_OUTPUTS
    assert keys(FramePermutationModel.serve) == PERM_VIDEO_OUTPUTS
    frames_signature = re.compile(r'Signature\((?:[^()]|\([^()]*\))*"frames"\)|input_name="frames"')
    perm_src = "\n".join(p.read_text() for p in sorted((REPO / "permutation_tf").glob("*.py")))  # not image/
    assert frames_signature.search(perm_src)
    oled_src = _package_source("oled_tf")
    assert frames_signature.search(oled_src) and '"patches"' in oled_src
    known = {frozenset(outputs): inp for _, inp, outputs, _ in predict.KNOWN_EXPORTS}
    for outputs, inp in ((OLED_IMAGE_OUTPUTS, "images"), (OLED_FRAME_OUTPUTS, "frames"), (NRE_OUTPUTS, "images"),
                         (ARTIFACTS_OUTPUTS, "images"), (CLASSIFIER_OUTPUTS, "images"),
                         (PERM_IMAGE_OUTPUTS, "images"), (PERM_VIDEO_OUTPUTS, "frames")):
        assert known[frozenset(outputs)] == inp


def test_real_exporters_metadata_is_understood(exports, image_folder, tmp_path, capsys, monkeypatch):
    """The preprocessing the real artifacts and permutation video exporters store (``assets.extra/export.json``,
    per signature, as ``common.lifecycle.Run.export`` writes it) is read without a warning and gives the same
    scores as the range and clip sampling the tests above check by hand."""
    from types import SimpleNamespace

    from artifacts_tf.experiment import preprocessing as artifacts_preprocessing
    from permutation_tf.pipeline import preprocessing as video_preprocessing

    def with_metadata(key, pre):
        model = tmp_path / key / "1"
        shutil.copytree(exports[key], model)
        (model / "assets.extra").mkdir(exist_ok=True)
        (model / "assets.extra" / "export.json").write_text(json.dumps(
            {"method": key, "signatures": {"serving_default": {"input": "images" if key == "artifacts" else "frames",
                                                               **pre}}}))
        return model

    art = with_metadata("artifacts", artifacts_preprocessing(SimpleNamespace(image_size=8)))
    out = tmp_path / "art.csv"
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={art}", f"--data_dir={image_folder}", f"--out={out}")
    assert rc == 0 and "warning" not in err, err
    x = np.stack([_reference_image(image_folder / p, "RGB") for p in EXPECTED_PATHS]) / 127.5 - 1.0
    np.testing.assert_allclose(_col(_read_csv(out)[0], "real_probability"),
                               _direct(art, x)["real_probability"], rtol=1e-5, atol=1e-6)

    vid = with_metadata("perm_video", video_preprocessing(SimpleNamespace(skip=1, frame_size=8, input_norm="pm1"),
                                                          SimpleNamespace(m=3)))
    d = tmp_path / "v"
    rng = np.random.default_rng(5)
    frames = _rand(rng, 6, 8, 8, 3)
    for i, f in enumerate(frames):
        _png(d / "clip" / f"{i}.png", f)
    out = tmp_path / "vid.csv"
    rc, stdout, err = _inproc(capsys, monkeypatch, f"--model={vid}", f"--data_dir={d}", f"--out={out}")
    assert rc == 0 and "warning" not in err, err
    (row,), _ = _read_csv(out)
    clips = frames[np.arange(2)[:, None] + np.array([0, 2, 4])[None, :]] / 255.0   # skip 1: t, t+2, t+4
    want = _direct(vid, clips, input_name="frames")["anomaly_score"]
    assert int(row["n_scored"]) == 2
    np.testing.assert_allclose(float(row["anomaly_score_mean"]), want.mean(), rtol=1e-5, atol=1e-6)
