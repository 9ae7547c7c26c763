"""Robust Bayesian meta-analysis: publication-bias models and model averaging (RoBMA-PSMA).

- :mod:`~rebayes.bayes.robust.space`: the 16 models (effect x heterogeneity x bias: none,
  PET, PEESE, step-function selection), their prior probabilities and priors;
- :mod:`~rebayes.bayes.robust.likelihood`: their log posterior densities on the normal
  approximation of the studies' log ratios;
- :mod:`~rebayes.bayes.robust.quadrature`: marginal likelihoods by deterministic quadrature;
- :mod:`~rebayes.bayes.robust.models`: one model fitted (and the no-bias engine interface);
- :mod:`~rebayes.bayes.robust.averaging`: posterior model probabilities, inclusion Bayes
  factors and the model-averaged effect (:func:`robust_bma`).

No PyMC: everything is numpy and scipy, a few seconds per meta-analysis.
"""
