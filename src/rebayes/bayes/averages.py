"""What a meta-regression's row-average effect is, in numbers and in words.

With covariates, or one effect per subgroup, rows differ in their expected effects; the
"pooled" effect a fit reports is then the mean over the analysed rows of each row's expected
effect: a mix of the subgroups weighted by their numbers of rows, or, for a continuous
covariate, the effect at the rows' mean (the design centres its columns there). Both engines
describe it here, NUTS from a fit's tree (:mod:`rebayes.bayes.quantities`) and the exact
engine from the design (:mod:`rebayes.bayes.exact_fit`); nothing here needs xarray.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["average_description", "average_weights"]


def average_weights(labels: Sequence[str], subgroups: Sequence[str],
                    by_covariate: bool) -> dict[str, float]:
    """Weight of each subgroup in the row average: its share of the rows.

    Parameters
    ----------
    labels : sequence of str
        Each analysed row's reporting subgroup.
    subgroups : sequence of str
        The reported subgroups.
    by_covariate : bool
        Whether rows differ in expected effect (covariates or one effect per subgroup).

    Returns
    -------
    dict of str to float
        Empty without subgroups or covariates. Rows outside every reported subgroup (e.g. a
        mixed stratum entered with its share) carry the remaining weight.
    """
    if not subgroups or not by_covariate:
        return {}
    rows = np.asarray(labels).astype(str)
    return {name: float(np.mean(rows == name)) for name in subgroups}


def average_description(labels: Sequence[str], subgroups: Sequence[str], by_covariate: bool,
                        slopes: bool, intercept_at: str) -> str:
    """Say what a meta-regression's row-average RR is, with its weights ("" otherwise).

    E.g. ``"average over the 10 analysed rows, each weighing the same: early 7 rows
    (weight 0.70), late 3 rows (weight 0.30); ..."``, or, for a continuous covariate,
    ``"the effect at ablat = 33.46 degree (the mean of the 13 analysed rows); ..."``.

    Parameters
    ----------
    labels, subgroups, by_covariate
        As for :func:`average_weights`.
    slopes : bool
        Whether the design has covariate columns (``X``).
    intercept_at : str
        Where the centred covariates are 0 (:attr:`rebayes.bayes.design.Design.intercept_at`).
    """
    if not by_covariate:
        return ""
    weights = average_weights(labels, subgroups, by_covariate)
    size = len(labels)
    if weights:
        counts = ", ".join(
            f"{name} {int(round(w * size))} rows (weight {w:.2f})" for name, w in weights.items()
        )
        return (
            f"average over the {size} analysed rows, each weighing the same: {counts}; "
            "a mix of the subgroups, not the overall analysis's pooled effect"
        )
    if not slopes or not intercept_at:
        return (f"average over the {size} analysed rows, each weighing the same; not "
                "the overall analysis's pooled effect")
    # The design centres its columns at the rows' means (rebayes.bayes.design): the row
    # average is the effect there, d.
    return f"the effect {intercept_at}; not the overall analysis's pooled effect"
