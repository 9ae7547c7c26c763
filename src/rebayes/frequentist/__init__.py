"""RevMan 5's own formulas, RevMan 5 files, and the frequentist bias methods.

- :mod:`~rebayes.frequentist.pooling.pooling`: study effects, M-H / inverse-variance / Peto pooling,
  fixed and DerSimonian-Laird random effects, subgroups and heterogeneity;
- :mod:`~rebayes.frequentist.pooling.revman`: reading ``.rm5`` files (data and stored results);
- :mod:`~rebayes.frequentist.meta_regression`: FE, DL, ML and REML meta-regression on (yi, vi);
- :mod:`~rebayes.frequentist.small_study`: Egger's, Peters', Harbord's and Begg's tests;
- :mod:`~rebayes.frequentist.trimfill`: Duval & Tweedie's trim-and-fill;
- :mod:`~rebayes.frequentist.selection`: the step-function selection model.
"""
