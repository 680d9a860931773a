"""Learning to Spot Artifacts end to end: autoencoder pre-training (then frozen), the damage & repair game,
transfer (Table 1 and Table 2 protocols, with the two floors), Fig. 6 renderings and SavedModel export.

    python -m artifacts_tf.train --dataset=fashion_mnist --scale=quick [--ablation=baseline|a|...|l]
        [--workdir=DIR] [--export_dir=DIR] [--floors] [--autoencoder_dir=DIR]
    python -m artifacts_tf.train --dataset=stl10 --data_dir=/data --scale=paper --code_defaults

Writes into ``--workdir``: ``config.json``, ``autoencoder/`` (the AE stage, unless ``--autoencoder_dir``),
``log.csv`` / TensorBoard / resumable checkpoints of the game, ``figures/fig6.png``, ``metrics.json`` (transfer
accuracies, losses, timings). Only this module reads flags: ``main`` builds an :class:`ArtifactsConfig` and calls
:func:`run`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from absl import app, flags

from common import flags as cflags
from common.config import write_json_atomic, write_metrics
from common.errors import ConfigError, exit_on_error
from artifacts_tf.config import ArtifactsConfig

log = logging.getLogger(__name__)

flags.DEFINE_enum("ablation", "baseline", ("baseline",) + tuple("abcdefghijkl"),
                  "Table 1 row: baseline, (a) input image as real, (b) local repair, (c)-(f) drop rate "
                  "0.1/0.3/0.7/0.9, (g) no mask prediction, (h) 3x3 encoder convs, (i) no gating, (j) no history, "
                  "(k) no repair network, (l) a standard GAN generator.")
flags.DEFINE_boolean("code_defaults", False, "Use the authors' code values where they differ from the paper "
                     "(theta 0.7, lrelu 0.2, tanh output, no repair input BN, fc6 BN, mask weight 0.1 and on "
                     "reals, kept-region MSE 30, the code's generator loss, conv5 BN kept for transfer).")
flags.DEFINE_float("drop_rate", None, "theta, the probability of dropping an encoder position (paper Table 1 "
                   "baseline 0.5; code 0.7). Overridden by the ablations (c)-(f).")
flags.DEFINE_float("lrelu_slope", None, "Leaky-ReLU slope of E, D and R (paper 0.1, code 0.2).")
flags.DEFINE_enum("ae_output", None, ("lrelu", "tanh"), "Last decoder activation (paper lrelu, code tanh).")
flags.DEFINE_boolean("repair_input_bn", None, "BN before the mask concatenation in each repair block (paper "
                     "Fig. 5: yes; code: no).")
flags.DEFINE_boolean("fc6_bn", None, "BN in the discriminator's fc6 (paper: no, BN only after conv5; code: yes).")
flags.DEFINE_float("mask_loss_weight", None, "Weight of L_mask (Eq. 5) in C's loss (paper 1; code 0.1).")
flags.DEFINE_boolean("mask_on_real", None, "Also train C^mask on real images with an all-kept target (code).")
flags.DEFINE_float("repair_rec_weight", None, "Weight of the code's kept-region MSE in R's loss (paper 0, code 30).")
flags.DEFINE_enum("generator_loss", None, ("minimax", "non_saturating", "code"), "R's side of Eq. 4 (paper "
                  "minimax; see artifacts_tf/losses.py).")
flags.DEFINE_boolean("transfer_conv5_bn", None, "Keep conv5's BN in the transfer features (code) instead of "
                     "removing it (paper Sec. 4.4).")
flags.DEFINE_integer("history_size", None, "Capacity of the buffer of corrupted examples (paper silent).")
flags.DEFINE_float("learning_rate", 3e-4, "Adam learning rate of both players (paper 3e-4).")
flags.DEFINE_float("final_learning_rate", 3e-6, "Learning rate reached by the linear decay (paper 3e-6).")
flags.DEFINE_integer("image_size", 96, "Side of the square images fed to the networks (96 = STL-10).")
flags.DEFINE_boolean("augment", True, "Random resized crops and flips during training (paper Sec. 5.2.1).")
flags.DEFINE_integer("ae_epochs", None, "Autoencoder pre-training epochs (default: the --scale preset).")
flags.DEFINE_string("autoencoder_dir", None, "Folder of a pre-trained autoencoder stage to reuse (checked by "
                    "config and weight hash); trained there when empty. Default: <workdir>/autoencoder.")
flags.DEFINE_integer("pretrain_limit", None, "Unlabelled images for the AE and the game (0 = all).")
flags.DEFINE_integer("labelled_limit", None, "Labelled images for transfer, class-balanced (0 = all).")
flags.DEFINE_integer("test_limit", None, "Test images, class-balanced (0 = all).")
flags.DEFINE_enum("transfer", "table1", ("table1", "none"), "Transfer protocol after pre-training.")
flags.DEFINE_integer("transfer_epochs", None, "Epochs of the fully connected head (paper 200).")
flags.DEFINE_boolean("floors", False, "Also transfer from randomly initialised conv layers and from the frozen "
                     "AE encoder (same protocol).")
flags.DEFINE_integer("folds", None, "Table 2: number of folds of the linear protocol (0 = skip).")
flags.DEFINE_integer("fold_size", None, "Table 2: labelled images per fold when the dataset has no predefined "
                     "folds (STL-10 has ten of 1,000).")
flags.DEFINE_boolean("figures", True, "Write the Fig. 6-style PNG into <workdir>/figures.")

FLAGS = flags.FLAGS
_FIELDS = ("ablation", "code_defaults", "drop_rate", "lrelu_slope", "ae_output", "repair_input_bn", "fc6_bn",
           "mask_loss_weight", "mask_on_real", "repair_rec_weight", "generator_loss", "transfer_conv5_bn",
           "history_size", "learning_rate", "final_learning_rate", "image_size", "augment", "ae_epochs",
           "autoencoder_dir", "pretrain_limit", "labelled_limit", "test_limit", "transfer", "transfer_epochs",
           "floors", "folds", "fold_size", "figures")


def config_from_flags() -> ArtifactsConfig:
    common = cflags.common_values()
    common["jit_compile"] = cflags.parse_jit_compile(common["jit_compile"])
    return ArtifactsConfig.from_flags(common, **{k: FLAGS[k].value for k in _FIELDS})


def _adam(cfg, steps: int):
    import keras

    lr = keras.optimizers.schedules.PolynomialDecay(cfg.learning_rate, max(steps, 1), cfg.final_learning_rate,
                                                    power=1.0)
    opt = keras.optimizers.Adam(lr, beta_1=cfg.beta_1)
    if cfg.precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


# ------------------------------------------------------------------------------------------ AE stage
def _ae_identity(cfg, data) -> dict:
    return {"dataset": cfg.dataset, "image_size": cfg.image_size, "encoder_kernel": cfg.encoder_kernel,
            "lrelu_slope": cfg.lrelu_slope, "ae_output": cfg.ae_output, "ae_epochs": cfg.ae_epochs,
            "unlabelled_images": int(len(data.unlabelled)), "seed": cfg.seed, "augment": cfg.augment,
            "precision": cfg.precision}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretrain_autoencoder(cfg, data, ae_dir: Path):
    """Sec. 4.2: train {E, D} with Eq. 3 on the unlabelled images, or load the finished stage from ``ae_dir``
    (its ``stage.json`` must describe the same autoencoder and the weights must match their recorded hash).
    Returns the autoencoder, frozen."""
    import keras
    import tensorflow as tf

    from artifacts_tf.data import image_dataset
    from artifacts_tf.losses import autoencoder_loss
    from artifacts_tf.networks import Autoencoder

    ident = _ae_identity(cfg, data)
    ae = Autoencoder(cfg.image_size, 3, cfg.encoder_kernel, cfg.lrelu_slope, cfg.ae_output, name="autoencoder")
    ae(tf.zeros((1, cfg.image_size, cfg.image_size, 3)))
    weights, stage = ae_dir / "autoencoder.weights.h5", ae_dir / "stage.json"
    if stage.is_file() and weights.is_file():
        rec = json.loads(stage.read_text())
        if rec.get("identity") != ident:
            raise ConfigError(f"{ae_dir} holds an autoencoder trained with {rec.get('identity')}, not {ident}; "
                              f"pass another --autoencoder_dir")
        if _sha256(weights) != rec.get("sha256"):
            raise ConfigError(f"{weights} does not match the hash recorded in {stage} (changed or truncated); "
                              f"delete {ae_dir} to train it again")
        ae.load_weights(str(weights))
        print(f"autoencoder: reusing {weights} (final loss {rec.get('final_loss')})", flush=True)
    else:
        t0 = time.time()
        ds = image_dataset(data.unlabelled, cfg.image_size, cfg.batch_size, cfg.seed + 1, True, cfg.augment)
        ds = ds.map(lambda x: (x, x))
        steps = len(data.unlabelled) // cfg.batch_size * cfg.ae_epochs
        ae.compile(_adam(cfg, steps), loss=lambda y, p: autoencoder_loss(y, p))
        hist = ae.fit(ds, epochs=cfg.ae_epochs, verbose=2)
        ae_dir.mkdir(parents=True, exist_ok=True)
        tmp = ae_dir / ".tmp.autoencoder.weights.h5"
        ae.save_weights(str(tmp))
        tmp.replace(weights)
        final = float(hist.history["loss"][-1])
        write_json_atomic({"identity": ident, "sha256": _sha256(weights), "final_loss": final,
                           "seconds": time.time() - t0}, stage)
        print(f"autoencoder: trained {cfg.ae_epochs} epochs in {time.time() - t0:.0f} s, loss {final:.4f}",
              flush=True)
    ae.trainable = False
    return ae


# ------------------------------------------------------------------------------------------- game
def build_model(cfg, autoencoder):
    from artifacts_tf.model import SpotArtifacts

    kw = cfg.model_kwargs()
    model = SpotArtifacts(autoencoder if kw.get("generator") != "gan" else None, cfg.image_size, 3,
                          seed=cfg.seed + 17, name="spot_artifacts", **kw)
    return model


def train_game(cfg, data, autoencoder, workdir: Path):
    """Sec. 4.3: C against R (or G for (l)) for ``cfg.epochs`` epochs on the unlabelled images."""
    from artifacts_tf.data import image_dataset
    from common.training import fit_verbosity, resolve_jit_compile, standard_callbacks

    model = build_model(cfg, autoencoder)
    steps = len(data.unlabelled) // cfg.batch_size * cfg.epochs
    model.compile(_adam(cfg, steps), _adam(cfg, steps) if model.has_generator_player else None,
                  jit_compile=resolve_jit_compile(cfg.jit_compile, cfg.strategy, cfg.deterministic))
    ds = image_dataset(data.unlabelled, cfg.image_size, cfg.batch_size, cfg.seed + 2, True, cfg.augment)
    hist = model.fit(ds, epochs=cfg.epochs, callbacks=standard_callbacks(workdir, resume=cfg.resume),
                     verbose=fit_verbosity())
    return model, {k: float(v[-1]) for k, v in hist.history.items()}


# --------------------------------------------------------------------------------------- transfer
def transfer_table1(cfg, data, model, autoencoder) -> dict:
    """Table 1 protocol (Sec. 5.1) for the discriminator and, with ``cfg.floors``, the two floors; also the
    Table 2 fold protocol on the discriminator's frozen conv5."""
    from artifacts_tf import transfer as tr
    from artifacts_tf.networks import build_alexnet_trunk, transfer_features

    n_cls = len(data.classes)

    def evaluate(name, feature_model, folds: bool):
        f_tr = tr.extract_features(feature_model, data.labelled_x, cfg.image_size, cfg.eval_batch_size)
        f_te = tr.extract_features(feature_model, data.test_x, cfg.image_size, cfg.eval_batch_size)
        acc, head = tr.fc_head_accuracy(f_tr, data.labelled_y, f_te, data.test_y, n_cls, cfg.transfer_epochs,
                                        learning_rate=cfg.transfer_learning_rate, seed=cfg.seed + 5)
        out = {"accuracy": acc}
        if folds and data.folds:
            out["folds_linear_conv5"] = tr.fold_linear_accuracy(f_tr, data.labelled_y, f_te, data.test_y,
                                                                data.folds, seed=cfg.seed)
        print(f"transfer {name}: {acc:.2f}% test accuracy", flush=True)
        return out, head

    t0 = time.time()
    disc = model.discriminator
    feats = transfer_features(disc.trunk, disc.conv5_bn if cfg.transfer_conv5_bn else None)
    results, head = evaluate("discriminator", feats, True)
    res = {"discriminator": results}
    if cfg.floors:
        # The random-init floor: a fresh trunk of the same network (its initial weights follow from --seed).
        rand = transfer_features(build_alexnet_trunk(cfg.image_size, 3, name="random_trunk"))
        res["random_init_conv"] = evaluate("random-init conv (floor)", rand, True)[0]
        if autoencoder is not None:
            enc = autoencoder.encoder
            res["autoencoder_encoder"] = evaluate("frozen AE encoder (floor)", enc, False)[0]
    res["seconds"] = time.time() - t0
    return res, feats, head


# ------------------------------------------------------------------------------------------- figure
def save_fig6(model, data, path: Path, title: str, n: int = 8) -> Path:
    """Fig. 6 style: input, autoencoded, damaged-and-repaired, true and predicted drop masks (white = dropped)."""
    import numpy as np
    import tensorflow as tf

    from artifacts_tf.data import to_model_range
    from common import plots

    x = to_model_range(data.test_x[:n], model.image_size)
    r = model.render(x)

    def mask_img(m):
        up = tf.image.resize(1.0 - tf.convert_to_tensor(m)[..., None], (model.image_size,) * 2, method="nearest")
        return np.asarray(up * 2.0 - 1.0)

    rows = [("input", np.asarray(r["input"])), ("autoencoded", np.asarray(r["autoencoded"])),
            ("damaged +\nrepaired", np.asarray(r["corrupted"])), ("dropped\n(true)", mask_img(r["keep_mask"])),
            ("dropped\n(C^mask)", mask_img(r["predicted_keep"]))]
    return plots.save_image_grid(rows, path, title=title)


# --------------------------------------------------------------------------------------------- run
def model_name(cfg) -> str:
    return f"artifacts_{cfg.dataset}"


def export(cfg, model, feats, head, data) -> dict:
    """``artifacts_<dataset>/<version>``: images -> features, real_probability, damage_mask; and (after transfer)
    ``artifacts_<dataset>_classifier/<version>``: images -> probabilities, class_id. Both re-run in a fresh
    process and compared with this one."""
    import numpy as np
    import tensorflow as tf

    from artifacts_tf.data import to_model_range
    from artifacts_tf.model import discriminator_serve_fn
    from common.export import check_export, export_saved_model

    shape = (cfg.image_size, cfg.image_size, 3)
    sample = np.asarray(to_model_range(data.test_x[:16], cfg.image_size))
    serve = discriminator_serve_fn(model.discriminator)
    path = export_saved_model(model.discriminator, serve, cfg.export_dir, model_name(cfg), shape)
    out = {"discriminator": {"path": str(path), "max_abs_diff_fresh_process": check_export(
        path, sample, {k: np.asarray(v) for k, v in serve(tf.constant(sample)).items()})}}
    if head is not None:
        def classify(images):
            p = tf.nn.softmax(tf.cast(head(feats(images, training=False), training=False), tf.float32))
            return {"probabilities": p, "class_id": tf.argmax(p, axis=-1, output_type=tf.int32)}

        cpath = export_saved_model([feats, head], classify, cfg.export_dir, model_name(cfg) + "_classifier", shape)
        expected = {k: np.asarray(v) for k, v in classify(tf.constant(sample)).items()}
        out["classifier"] = {"path": str(cpath), "max_abs_diff_fresh_process": check_export(cpath, sample, expected)}
    print(f"exported {path} (fresh-process check passed)", flush=True)
    return out


def run(config: ArtifactsConfig) -> dict:
    """Autoencoder stage -> game -> transfer (+ floors, Table 2 folds) -> Fig. 6 -> export; returns metrics."""
    from common.training import start_run
    from artifacts_tf.data import load
    from artifacts_tf.model import ABLATIONS

    t_start = time.time()
    cfg, workdir = start_run(config)
    data = load(cfg)
    print(f"Spot Artifacts {cfg.dataset} scale {cfg.scale} ablation {cfg.ablation}: {data.summary}; "
          f"{cfg.epochs} epochs of batch {cfg.batch_size}; workdir {workdir}", flush=True)
    ae_dir = Path(cfg.autoencoder_dir) if cfg.autoencoder_dir else workdir / "autoencoder"
    t0 = time.time()
    autoencoder = pretrain_autoencoder(cfg, data, ae_dir)
    ae_seconds = time.time() - t0
    t0 = time.time()
    model, final_losses = train_game(cfg, data, autoencoder, workdir)
    game_seconds = time.time() - t0
    metrics = {"method": "Learning to Spot Artifacts", "dataset": cfg.dataset, "scale": cfg.scale,
               "ablation": cfg.ablation, "row": ABLATIONS[cfg.ablation][0], "seed": cfg.seed, "data": data.summary,
               "model": cfg.model_kwargs(), "encoder_kernel": cfg.encoder_kernel, "final_losses": final_losses,
               "autoencoder_dir": str(ae_dir), "autoencoder_seconds": ae_seconds, "game_seconds": game_seconds,
               "game_images_per_second": len(data.unlabelled) * cfg.epochs / max(game_seconds, 1e-9)}
    feats = head = None
    if cfg.transfer == "table1":
        metrics["transfer"], feats, head = transfer_table1(cfg, data, model, autoencoder)
    if cfg.figures:
        metrics["figure"] = str(save_fig6(model, data, workdir / "figures" / "fig6.png",
                                          f"{ABLATIONS[cfg.ablation][0]} ({cfg.dataset}, {cfg.scale})"))
    if cfg.export_dir:
        metrics["export"] = export(cfg, model, feats, head, data)
    metrics["wall_seconds"] = time.time() - t_start
    write_metrics(metrics, workdir)
    if "transfer" in metrics:
        print(f"results ({workdir / 'metrics.json'}): " + ", ".join(
            f"{k} {v['accuracy']:.2f}%" for k, v in metrics["transfer"].items() if isinstance(v, dict)), flush=True)
    return metrics


@exit_on_error
def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; all options are --flags")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(config_from_flags())


if __name__ == "__main__":
    app.run(main)
