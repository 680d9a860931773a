"""Size NRE's quick preset (issue 19): time one epoch of every training stage of Tables 1 and 3 on mnist5k
quick data, measure encoder A's held-out reconstruction and neighbour quality against its learning rate, and
the black-box substitute's accuracy against its number of Jacobian augmentation rounds.

    .venv/bin/python benchmarks/bench_nre_stages.py [--parts=encoder_a,epochs,substitute] [--lrs=1e-4,1e-3,3e-3]
        [--max_epochs=40] [--dataset=mnist5k] [--seed=0]

encoder_a: per learning rate, the plain AE (batch 128) on 90% of the 4,000 training images, after every epoch
its pixel MSE on the other 10% (the mean image's MSE printed once) and every ``--rate_every`` epochs the
same-class rate of N(X') and F(X') (exact search in R_A over all 4,000 training codes, X' = the AE's
reconstruction; labels only measure). epochs: seconds of one epoch (the second, after tracing) of the plain AE
(= AE [20], DAE-like cost), DAE, context AE, split-brain AE, an Eq. 5 epoch (incl. its neighbour refresh),
MagNet's reformer at batch 32, the target classifier; and the SVM fits of one Table 1 cell. substitute: the
target after the quick epochs, then the CNN substitute's accuracy after 1..4 rounds (round 1 = the 150 images
only, each further round one Jacobian augmentation). Prints the load average beside every block.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


class EpochTimer:
    def __new__(cls):
        import keras

        class _T(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.t0)
        return _T()


def rates(model, x, y):
    from nre_tf.gates import neighbour_rates
    from nre_tf.model import predict_batched
    from nre_tf.neighbours import brute_force_neighbours

    enc = model.encoder
    bank = predict_batched(enc, x)
    q = predict_batched(lambda b, training=False: enc(model(b, training=False), training=False), x)
    near, far = brute_force_neighbours(bank, q, 1, exclude=np.arange(len(x)))
    r = neighbour_rates(y, near, far)
    near_x, _ = brute_force_neighbours(bank, bank, 1, exclude=np.arange(len(x)))
    return r["near"], r["far"], neighbour_rates(y, near_x, far)["near"]


def part_encoder_a(x, y, lrs, max_epochs, rate_every, seed):
    import keras

    from common.training import epoch_batches, num_batches
    from nre_tf import trainer
    from nre_tf.encoder_a import holdout_split
    from nre_tf.gates import mean_image_mse, mse
    from nre_tf.model import to_float

    fit, val = holdout_split(len(x), 0.1, seed)
    xf, xv = to_float(x[fit]), to_float(x[val])
    print(f"[encoder_a] load {load()}  fit {len(fit)} held-out {len(val)}  mean-image MSE "
          f"{mean_image_mse(xf, xv):.4f}  all-black MSE {mse(np.zeros_like(xv), xv):.4f}", flush=True)
    for lr in lrs:
        keras.utils.set_random_seed(seed)
        model, _ = trainer.build_autoencoder_model("ae", x.shape[1:], 128, seed)
        model.compile(optimizer=keras.optimizers.Adam(lr))
        model(xf[:2])
        t = EpochTimer()
        t_start = time.perf_counter()
        for e in range(max(max_epochs)):
            if e >= max_epochs[lrs.index(lr)]:
                break
            model.fit(epoch_batches(xf, 128, seed, e, e + 1), epochs=1, steps_per_epoch=num_batches(len(xf), 128),
                      verbose=0, callbacks=[t])
            v = mse(trainer.reconstruct(model, xv), xv)
            line = f"  lr {lr:g} epoch {e + 1:3d}  held-out MSE {v:.4f}  epoch {t.times[-1]:.2f} s"
            if (e + 1) % rate_every == 0 or e in (0, 1):
                n, f, nx = rates(model, x, y)
                line += f"  N(X') same-class {n:.3f}  F(X') {f:.3f}  N(X) {nx:.3f}"
            print(line, flush=True)
        print(f"  lr {lr:g}: {time.perf_counter() - t_start:.0f} s in all, load {load()}", flush=True)


def part_epochs(x, y, xt, yt, seed):
    import keras

    from common.linear_eval import NRE_RBF_GAMMA, fit_and_score
    from common.training import epoch_batches, num_batches
    from nre_tf import trainer
    from nre_tf.adversarial import train_target
    from nre_tf.model import to_float

    print(f"[epochs] load {load()}", flush=True)
    xf = to_float(x)
    out = {}
    for kind, bs, lr in (("ae", 128, 1e-3), ("dae", 128, 1e-4), ("context", 128, 1e-4), ("splitbrain", 128, 1e-4),
                         ("magnet", 32, 1e-3)):
        keras.utils.set_random_seed(seed)
        model, nets = trainer.build_autoencoder_model(kind, x.shape[1:], 128, seed)
        model.compile(optimizer=keras.optimizers.Adam(lr))
        model(xf[:2])
        t = EpochTimer()
        model.fit(epoch_batches(xf, bs, seed, 0, 2), epochs=2, steps_per_epoch=num_batches(len(xf), bs), verbose=0,
                  callbacks=[t])
        out[kind] = t.times
        print(f"  {kind:10s} batch {bs:3d}: epoch 1 {t.times[0]:.2f} s, epoch 2 {t.times[1]:.2f} s", flush=True)
        if kind == "ae":
            ae_model, ae_nets = model, nets
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        nre, info = trainer.train_nre(ae_nets["encoder"], ae_nets["decoder"], ae_nets["encoder"], x, (0.5, 0.2, 0.3),
                                      1, 2, 128, tmp, labels=y)
        print(f"  Eq. 5 (NRE)  2 epochs {info['train_seconds']:.2f} s (refreshes {info['refresh_seconds']}, k-means "
              f"fit {info['fit_seconds']:.2f} s), wall {time.perf_counter() - t0:.1f} s; rates "
              f"{info['neighbour_rates']}", flush=True)
    f_tr, f_te = trainer.encode(ae_model, x), trainer.encode(ae_model, xt)
    for clf in ("linear_svm", "rbf_svm"):
        t0 = time.perf_counter()
        acc = fit_and_score(clf, f_tr, y, f_te, yt, gamma=NRE_RBF_GAMMA, seed=seed)
        print(f"  {clf}: {time.perf_counter() - t0:.2f} s (acc {acc:.3f} after 2 AE epochs at 1e-3)", flush=True)
    t0 = time.perf_counter()
    train_target(x, y, 1)
    print(f"  target 1 epoch (incl. trace) {time.perf_counter() - t0:.1f} s; load {load()}", flush=True)


def part_substitute(seed, dataset):
    import keras

    from common.metrics import accuracy
    from nre_tf.adversarial import attack_split, train_target
    from nre_tf.blackbox import predict_labels, train_substitute
    from nre_tf.config import NREConfig

    cfg = NREConfig(dataset=dataset, scale="quick", seed=seed).resolved()
    x, y, x_sub, y_sub, x_att, y_att = attack_split(cfg)
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    target = train_target(x, y, cfg.attack_epochs)
    print(f"[substitute] load {load()}  target {accuracy(y_att, predict_labels(target, x_att)):.3f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    for rounds in (1, 2, 3, 4):
        keras.utils.set_random_seed(seed)
        t0 = time.perf_counter()
        sub = train_substitute(target, x_sub, y_sub, rounds, cfg.substitute_epochs, "cnn")
        print(f"  cnn substitute, {rounds} round(s) ({150 * 2 ** (rounds - 1)} points): accuracy "
              f"{accuracy(y_att, predict_labels(sub, x_att)):.3f} ({time.perf_counter() - t0:.1f} s)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="encoder_a,epochs,substitute")
    ap.add_argument("--lrs", default="1e-4,1e-3,3e-3")
    ap.add_argument("--max_epochs", default="8,40,25", help="per learning rate")
    ap.add_argument("--rate_every", type=int, default=5)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from nre_tf import trainer

    x, y, xt, yt = trainer.load_classification_split(a.dataset, None, 4000, 1000, a.seed)
    parts = a.parts.split(",")
    lrs = [float(v) for v in a.lrs.split(",")]
    mx = [int(v) for v in a.max_epochs.split(",")]
    if "epochs" in parts:
        part_epochs(x, y, xt, yt, a.seed)
    if "substitute" in parts:
        part_substitute(a.seed, a.dataset)
    if "encoder_a" in parts:
        part_encoder_a(x, y, lrs, mx, a.rate_every, a.seed)


if __name__ == "__main__":
    main()
