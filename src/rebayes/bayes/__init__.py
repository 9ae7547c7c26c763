"""The Bayesian model: from an analysis declaration to posterior quantities.

- :mod:`~rebayes.bayes.spec`: :class:`AnalysisSpec`, one analysis (model scripts);
- :mod:`~rebayes.bayes.analyses`: the default analyses of a dataset;
- :mod:`~rebayes.bayes.priors`: named prior sets, per outcome type and effect scale;
- :mod:`~rebayes.bayes.empirical_priors`: Bartoš et al.'s and van Zwet et al.'s Cochrane
  numbers;
- :mod:`~rebayes.bayes.robust`: publication-bias models and robust model averaging;
- :mod:`~rebayes.bayes.design`: the analysed rows, covariates and subgroups;
- :mod:`~rebayes.bayes.model`: the PyMC graph and its numpy companions;
- :mod:`~rebayes.bayes.settings`: how a fit is sampled (draws, chains, when to sample longer);
- :mod:`~rebayes.bayes.compilation`: the model compiled once per structure (nutpie);
- :mod:`~rebayes.bayes.nuts`: the NUTS run, longer until the draws are good enough;
- :mod:`~rebayes.bayes.trees`: a fit's DataTree, its derived groups recomputed;
- :mod:`~rebayes.bayes.fit`: :func:`~rebayes.bayes.fit.fit` and ``fit_priors``, the
  :class:`~rebayes.bayes.fit.Fit` they return;
- :mod:`~rebayes.bayes.quantities`: RRs, decision probabilities and NNT from the draws;
- :mod:`~rebayes.bayes.coefficients`: meta-regression coefficients per unit.

Fits, compiled models and summaries are kept on disk by :mod:`rebayes.store`.

Nothing here is imported by ``import rebayes.bayes``: PyMC loads only when a fit is made.
"""
