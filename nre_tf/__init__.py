"""NRE: Self-Supervised Representation Learning via Neighborhood-Relational Encoding (Sabokrou et al., ICCV 2019).

See nre_tf/README.md. Modules: networks, losses (Eq. 1-5), model (keras.Model subclasses), trainer, config,
train (entry point), table1..table4 (table entry points), tables (run_all jobs), figures.
"""
