"""Ali, Khan, Kyung, "Self-Supervised Representation Learning for Visual Anomaly Detection" (arXiv 2006.09654).

The package-level names are reserved for the paper's own method (the video frame-permutation task, Sections III
and IV-D, TABLES IV-VI). The six image pretext tasks the paper runs as one-class anomaly detectors (Section
IV-C, TABLES I-III) live in the sub-package :mod:`permutation_tf.image`; ``python -m permutation_tf.train_image``
trains one of them and :mod:`permutation_tf.tables` registers their table cells.
"""
