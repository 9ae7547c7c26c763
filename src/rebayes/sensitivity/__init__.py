"""How much the answer depends on the prior, the data variant and single trials.

- :mod:`~rebayes.sensitivity.comparison`: one analysis under several priors and variants;
- :mod:`~rebayes.sensitivity.conclusions`: conclusions and where they flip;
- :mod:`~rebayes.sensitivity.psense`: power-scaling sensitivity, prior-implied RRs;
- :mod:`~rebayes.sensitivity.bayes_factor`: Savage-Dickey Bayes factors;
- :mod:`~rebayes.sensitivity.influence`: leave one trial out.
"""
