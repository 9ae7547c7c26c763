"""Trial tables and what a dataset declares.

- :mod:`~rebayes.data.trials.trials`: load a dataset (shipped name, folder, CSV or RevMan file) and
  its data variants, validated, with provenance;
- :mod:`~rebayes.data.trials.schema`: ``dataset.toml`` (covariates, columns, strata, direction...);
- :mod:`~rebayes.data.trials.direction`: which side of RR = 1 is benefit, and the labels;
- :mod:`~rebayes.data.trials.scaffold`: ``rebayes init``, a dataset folder from a CSV;
- ``datasets/``: the shipped datasets (``rebayes.data.trials.list_datasets``).
"""
