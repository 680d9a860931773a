"""Fast Gradient Sign Method through cleverhans (Goodfellow et al. 2015), as NRE Table 3 uses it.

``x_adv = clip(x + eps * sign(grad_x loss(f(x), y)), clip_min, clip_max)`` with the L-infinity norm.
cleverhans 4.0.0 is installed with ``--no-deps`` (see requirements-nodeps.txt): its
``cleverhans.tf2.attacks.fast_gradient_method`` needs only numpy and TensorFlow.
"""
from __future__ import annotations

import numpy as np


def fgsm(model_fn, x, eps: float, clip_min: float | None = 0.0, clip_max: float | None = 1.0, y=None,
         targeted: bool = False, batch_size: int = 512) -> np.ndarray:
    """FGSM adversarial examples for ``model_fn`` (a callable returning logits), in batches.

    ``y``: labels to move away from (default: the model's own predictions, as cleverhans does, which avoids
    label leaking). For a black-box attack pass the substitute model here and evaluate on the target.
    """
    import tensorflow as tf
    from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method

    x = np.asarray(x, np.float32)
    out = []
    for i in range(0, len(x), batch_size):
        xb = tf.constant(x[i:i + batch_size])
        yb = None if y is None else tf.constant(np.asarray(y[i:i + batch_size]))
        adv = fast_gradient_method(model_fn, xb, eps, np.inf, clip_min=clip_min, clip_max=clip_max, y=yb,
                                   targeted=targeted)
        out.append(adv.numpy())
    return np.concatenate(out, axis=0) if out else x.copy()
