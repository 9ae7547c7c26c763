"""What a doubter asks next: tools no anchor package offers.

- :mod:`~rebayes.tools.priormap`: P(benefit) over a grid of effect priors;
- :mod:`~rebayes.tools.credibility`: reverse-Bayes analysis of credibility;
- :mod:`~rebayes.tools.cumulative`: the evidence as the trials arrived;
- :mod:`~rebayes.tools.planning`: what a new trial would settle;
- :mod:`~rebayes.tools.absolute`: absolute effects per 1000 (GRADE summary of findings).
"""
