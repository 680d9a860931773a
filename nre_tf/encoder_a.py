"""Encoder A as its own stage (Section 3.1): the plain auto-encoder whose frozen encoder defines R_A, trained
to convergence once per training set and reused by every NRE run on the same data.

Section 3.1: "an encoder network, A, is trained on all unlabeled available samples to provide a discriminative
representing of the samples ... jointly with a decoder"; Section 3.2: E_phi + D "are initialized based on an
optimized traditional encoder-decoder network". The paper gives no epoch count or learning rate for A, so the
stage trains until its held-out reconstruction stops improving (early stopping, ours):

* a seeded ``holdout`` fraction (default 10%) of the training images is held out (ours: the paper trains A on
  all samples; the held-out images are still in the bank R_A(X_i) and in every NRE training set);
* the plain AE (``nre_tf.trainer.train_autoencoder("ae")``) is trained with Adam ``ae_lr`` (default 1e-3,
  measured: at 1e-4 a few epochs leave A worse than the mean image, docs/nre-notes.md) for at most
  ``ae_epochs`` epochs; after every epoch its pixel MSE on the held-out images is computed, the best weights
  are kept, and training stops after ``ae_patience`` epochs without a relative improvement of ``MIN_REL_GAIN``;
* the best weights are saved as frozen weights (:func:`common.run_identity.save_frozen_weights`) in
  ``<encoder_a_root>/<dataset>_<key>/``, ``key`` = a hash of the training images' bytes, the stage's
  settings (architecture, latent size, lr, epochs, patience, hold-out, batch size, seed, precision) and the
  stage's code version. Any run with the same data and settings loads them instead of training
  (:func:`ensure`); their id (:func:`common.run_identity.frozen_weights_id`) goes into the NRE run's config
  field ``encoder_a_id`` and so into its run identity (:func:`prepare`).

``stage.json`` beside the weights records the held-out curve, the best epoch, A's held-out MSE and the MSE of
predicting the mean training image (the gate of :mod:`nre_tf.gates`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np

A_NAME = "autoencoder_a"
METHOD = "nre_encoder_a"
STAGE_FILE = "stage.json"
CODE_ROOTS = ("nre_tf.encoder_a",)
# An epoch counts as an improvement when the held-out MSE falls below (1 - MIN_REL_GAIN) x the best so far.
MIN_REL_GAIN = 0.005


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_idx, heldout_idx)``, sorted, a seeded split of ``n`` images (at least one held out)."""
    n_val = min(n - 1, max(1, int(round(fraction * n))))
    perm = np.random.default_rng([int(seed), 19]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def data_digest(x) -> str:
    """sha256 of an image array's dtype, shape and bytes: "the same data"."""
    a = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def stage_fields(cfg, x, arch: str) -> dict:
    """What A depends on (the stage's config)."""
    return {"method": METHOD, "dataset": cfg.dataset, "data_sha256": data_digest(x), "arch": arch,
            "latent_dim": int(cfg.latent_dim), "lr": float(cfg.ae_lr), "max_epochs": int(cfg.ae_epochs),
            "patience": int(cfg.ae_patience), "holdout": float(cfg.ae_holdout), "min_rel_gain": MIN_REL_GAIN,
            "batch_size": int(cfg.batch_size), "seed": int(cfg.seed), "precision": cfg.precision,
            "deterministic": bool(cfg.deterministic)}


def stage_root(cfg) -> Path:
    from common.paths import REPO_ROOT

    return Path(cfg.encoder_a_root) if cfg.encoder_a_root else REPO_ROOT / "runs" / "nre_encoder_a"


def stage_key(fields: dict) -> tuple[str, dict]:
    """``(sha256 of the fields and the stage's code version, code version)``."""
    from common.run_identity import code_version

    code = code_version(CODE_ROOTS)
    text = json.dumps({"fields": fields, "code": code["sources"]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), code


class HeldOutEarlyStopping(keras.callbacks.Callback):
    """Held-out pixel MSE after every epoch, the best weights kept in ``best_path``, stop after ``patience``
    epochs without a relative improvement of ``MIN_REL_GAIN``. Its state is checkpointed
    (``fit_resumable(stateful=...)``), so a resumed stage stops where an uninterrupted one would."""

    def __init__(self, x_val, patience: int, best_path):
        super().__init__()
        self.x_val, self.patience, self.best_path = x_val, int(patience), Path(best_path)
        self.best, self.best_epoch, self.wait, self.curve = float("inf"), 0, 0, []

    def on_epoch_end(self, epoch, logs=None):
        from nre_tf.gates import mse
        from nre_tf.model import predict_batched

        value = mse(predict_batched(self.model, self.x_val), self.x_val)
        self.curve.append(value)
        if value < self.best * (1.0 - MIN_REL_GAIN):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            self.best_path.parent.mkdir(parents=True, exist_ok=True)
            self.model.save_weights(str(self.best_path))
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        if logs is not None:
            logs["heldout_mse"] = value

    def get_state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "curve": self.curve}

    def set_state(self, state: dict) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.wait, self.curve = int(state["wait"]), list(state["curve"])


def _read_stage(d: Path) -> dict | None:
    from common.run_identity import read_identity

    ident = read_identity(d) if d.is_dir() else None
    if ident is None or A_NAME not in (ident.get("weights") or {}) or not (d / STAGE_FILE).is_file():
        return None
    return json.loads((d / STAGE_FILE).read_text())


def ensure(cfg, x, arch: str = "conv") -> tuple[dict, Path]:
    """The stage record and folder of encoder A for the training images ``x`` (uint8): loaded when a finished
    stage with the same key exists (``record["reused"]`` True), else trained now (resumable) and saved."""
    import fcntl

    fields = stage_fields(cfg, x, arch)
    key, code = stage_key(fields)
    d = stage_root(cfg) / f"{cfg.dataset}_{key[:12]}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:  # one process trains a stage; the others wait, then load it
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = _read_stage(d)
        if record is not None:
            print(f"encoder A: reusing the frozen stage {d} ({record['weights_id']})", flush=True)
            return {**record, "reused": True}, d
        return _train_stage(cfg, x, arch, d, key, fields, code), d


def _train_stage(cfg, x, arch: str, d: Path, key: str, fields: dict, code: dict) -> dict:
    from common.jsonio import write_json_atomic
    from common.run_identity import FORMAT, IDENTITY_FILE, frozen_weights_id, read_identity, save_frozen_weights
    from common.training import setup_run
    from nre_tf import trainer
    from nre_tf.gates import mean_image_mse, mse
    from nre_tf.model import to_float

    if read_identity(d) is None:
        import datetime as _dt

        write_json_atomic({"format": FORMAT, "method": METHOD, "config_hash": key, "config": fields, "code": code,
                           "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                           "weights": {}}, d / IDENTITY_FILE)
    setup_run(cfg.seed, cfg.deterministic, cfg.precision)
    fit_idx, val_idx = holdout_split(len(x), cfg.ae_holdout, cfg.seed)
    x_val = to_float(x[val_idx])
    stopper = HeldOutEarlyStopping(x_val, cfg.ae_patience, d / "train" / "best.weights.h5")
    t0 = time.perf_counter()
    model, _, _ = trainer.train_autoencoder("ae", x[fit_idx], cfg.ae_epochs, cfg.batch_size, d / "train",
                                            lr=cfg.ae_lr, latent_dim=cfg.latent_dim, seed=cfg.seed, resume=True,
                                            arch=arch, callbacks=[stopper], stateful=[stopper])
    model.load_weights(str(d / "train" / "best.weights.h5"))
    heldout = mse(trainer.reconstruct(model, x_val), x_val)
    save_frozen_weights(d, A_NAME, model)
    record = {"fields": fields, "weights_id": frozen_weights_id(d, A_NAME), "heldout_mse": heldout,
              "mean_image_mse": mean_image_mse(to_float(x[fit_idx]), x_val), "best_epoch": stopper.best_epoch,
              "epochs_run": len(stopper.curve), "heldout_curve": stopper.curve, "n_fit": int(len(fit_idx)),
              "n_heldout": int(len(val_idx)), "train_seconds": time.perf_counter() - t0,
              "stopped_early": len(stopper.curve) < cfg.ae_epochs}
    write_json_atomic(record, d / STAGE_FILE)
    print(f"encoder A: trained {record['epochs_run']} epochs (best {record['best_epoch']}), held-out MSE "
          f"{heldout:.4f} vs mean image {record['mean_image_mse']:.4f}; saved in {d}", flush=True)
    return {**record, "reused": False}


def load(cfg, input_shape, arch: str = "conv"):
    """``(model, nets)`` of encoder A's auto-encoder from the stage ``cfg.encoder_a_dir`` (sha256 checked);
    ``nets["encoder"]`` is A, ``nets["decoder"]`` its decoder (E_phi + D start from both)."""
    from common.run_identity import load_frozen_weights
    from nre_tf import trainer

    model, nets = trainer.build_autoencoder_model("ae", tuple(input_shape), cfg.latent_dim, cfg.seed, arch)
    model(np.zeros((2, *input_shape), np.float32))
    load_frozen_weights(cfg.encoder_a_dir, model, A_NAME, expected={"method": METHOD})
    return model, nets


def stage_record(cfg) -> dict:
    """The ``stage.json`` of the stage this run uses (``cfg.encoder_a_dir``)."""
    return json.loads((Path(cfg.encoder_a_dir) / STAGE_FILE).read_text())


def prepare(config, images):
    """``config`` resolved, with encoder A's stage ensured for the run's training images ``images(cfg)``
    (uint8, or ``(x, arch)``) and its folder and id set (``encoder_a_dir``; ``encoder_a_id`` enters the run
    identity, so retraining A makes every downstream NRE run a new run)."""
    from common.paths import check_output_dirs

    cfg = config.resolved()
    check_output_dirs(cfg.workdir, cfg.export_dir)  # a bad --workdir fails before A is trained
    if cfg.strategy == "mirrored":  # logical CPU replicas must be made before TensorFlow initialises
        from common.training import mirrored_devices

        mirrored_devices()
    x = images(cfg)
    x, arch = x if isinstance(x, tuple) else (x, "conv")
    _, d = ensure(cfg, x, arch)
    from common.run_identity import frozen_weights_id

    return dataclasses.replace(cfg, encoder_a_dir=str(d), encoder_a_id=frozen_weights_id(d, A_NAME))
