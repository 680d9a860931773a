"""OLED (Jewell et al., WACV 2022) in TF2/Keras 3: see oled_tf/README.md."""
