"""The tables of the four papers, one module per paper (see common.registry)."""
