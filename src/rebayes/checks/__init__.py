"""Can a fit be trusted? Convergence gates, predictive checks, PSIS-LOO.

- :mod:`~rebayes.checks.gates`: the thresholds, one object rendered everywhere;
- :mod:`~rebayes.checks.convergence`: :func:`diagnose`, the one convergence verdict;
- :mod:`~rebayes.checks.ppc`: arm-level and trial-level (mixed) predictive checks;
- :mod:`~rebayes.checks.loo`: PSIS-LOO by trial and comparison of analyses.
"""
