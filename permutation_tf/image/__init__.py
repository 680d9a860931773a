"""The six self-supervised image pretext tasks of Section IV-C as one-class anomaly detectors.

| module | content |
|---|---|
| ``transforms`` | the pretext transformations as pure tensor functions (tiles, permutations, rotations, colour split, masks, quantisation) |
| ``networks`` | the one backbone shared by every task, and the small heads |
| ``tasks`` | one :class:`~permutation_tf.image.tasks.PretextTask` per method: its networks, per-transformation losses, training loss |
| ``model`` | :class:`~permutation_tf.image.model.PretextModel`, the one ``keras.Model`` trainer (task as a component) |
| ``scoring`` | the one anomaly-score rule |
| ``config`` / ``data`` / ``evaluate`` / ``pipeline`` | config and presets, data and protocol, metrics, ``run(config)`` |
"""
