"""The audit of a publication's figures: reported vs recomputed with RevMan's formulas.

- :mod:`~rebayes.audit.paper`: ``reported.csv``, the recomputation and the verdicts.
"""
