"""RevMan 5's own formulas, and RevMan 5 files.

- :mod:`~rebayes.frequentist.pooling.pooling`: study effects, M-H / inverse-variance / Peto pooling,
  fixed and DerSimonian-Laird random effects, subgroups and heterogeneity;
- :mod:`~rebayes.frequentist.pooling.revman`: reading ``.rm5`` files (data and stored results).
"""
