"""NRE: Self-Supervised Representation Learning via Neighborhood-Relational Encoding (Sabokrou et al., ICCV 2019).

See nre_tf/README.md. Library: networks, losses (Eq. 1-5), model (keras.Model subclasses), trainer, config,
neighbours (Eq. 2-3, Section 3.2 k-means lookup), data (training images / patches), blackbox (Table 3's
classifiers), floors (the PCA-20 floor rows), cli (the tables' shared main), figures. Entry points (nothing
imports them): train, table1..table4. Registry jobs: tables.
"""
