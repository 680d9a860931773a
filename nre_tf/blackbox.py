"""The black-box FGSM setting of NRE Table 3 (library code): cleverhans' target and substitute classifiers and
Papernot et al.'s Jacobian dataset augmentation (``mnist_blackbox.py`` recipe, reference notes 5.6).

The protocol itself (which images play which role, MagNet vs NRE refinement) is ``nre_tf.table3``.
"""
from __future__ import annotations

JACOBIAN_STEP = 0.1


def basic_cnn(input_shape, n_classes: int = 10, name: str = "basic_cnn"):
    """cleverhans' ``ModelBasicCNN`` (the oracle of mnist_blackbox.py); outputs logits."""
    import keras
    from keras import layers

    x_in = keras.Input(shape=tuple(input_shape))
    h = layers.Conv2D(64, 8, strides=2, padding="same", activation="relu")(x_in)
    h = layers.Conv2D(128, 6, strides=2, padding="valid", activation="relu")(h)
    h = layers.Conv2D(128, 5, strides=1, padding="valid", activation="relu")(h)
    h = layers.Flatten()(h)
    return keras.Model(x_in, layers.Dense(n_classes)(h), name=name)


def mlp(input_shape, n_classes: int = 10, name: str = "substitute_mlp"):
    """The cleverhans black-box substitute: 784 -> 200 ReLU -> 200 ReLU -> 10 logits."""
    import keras
    from keras import layers

    x_in = keras.Input(shape=tuple(input_shape))
    h = layers.Flatten()(x_in)
    h = layers.Dense(200, activation="relu")(h)
    h = layers.Dense(200, activation="relu")(h)
    return keras.Model(x_in, layers.Dense(n_classes)(h), name=name)


def compile_classifier(model, lr=1e-3):
    """Adam + sparse categorical cross-entropy on logits, with accuracy (the cleverhans training)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def predict_labels(model, x, batch_size: int = 512):
    import numpy as np

    return np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=1)


def jacobian_augmentation(model, x, y, step: float):
    """Papernot et al.'s Jacobian dataset augmentation: ``x + step * sign(d logit_y / d x)`` for each row."""
    import numpy as np
    import tensorflow as tf

    out = []
    for i in range(0, len(x), 256):
        xb = tf.constant(x[i:i + 256])
        with tf.GradientTape() as tape:
            tape.watch(xb)
            logits = model(xb, training=False)
            picked = tf.gather(logits, tf.constant(y[i:i + 256]), axis=1, batch_dims=1)
        g = tape.gradient(picked, xb)
        out.append((xb + step * tf.sign(g)).numpy())
    return np.concatenate(out).astype(np.float32)


def train_substitute(target, x_sub, y_sub, rounds: int, epochs: int, kind: str = "cnn"):
    """The black-box substitute (cleverhans mnist_blackbox recipe, reference notes 5.6). Draws from the global
    seed (set once at the start of the run)."""
    import numpy as np

    net = basic_cnn(x_sub.shape[1:], name="substitute_cnn") if kind == "cnn" else mlp(x_sub.shape[1:])
    sub = compile_classifier(net)
    x_cur, y_cur = x_sub.astype(np.float32), y_sub.astype(np.int64)
    for rho in range(rounds):
        sub.fit(x_cur, y_cur, epochs=epochs, batch_size=128, verbose=0, shuffle=True)
        if rho < rounds - 1:
            coef = 2 * int(int(rho / 3) != 0) - 1  # -1 for the first three augmentations, +1 afterwards
            # cleverhans: every current point gets a new neighbour; the set doubles each round.
            x_new = jacobian_augmentation(sub, x_cur, y_cur, coef * JACOBIAN_STEP)
            y_new = predict_labels(target, x_new)
            x_cur, y_cur = np.concatenate([x_cur, x_new]), np.concatenate([y_cur, y_new])
    return sub
